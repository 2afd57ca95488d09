"""The argument parser: every command takes --library, --json and --debug, before or after it.

Bad usage exits 2 with one line on stderr (argparse's default prints the whole usage block).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

PROG = "character-studio"


class CliParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def common_options() -> CliParser:
    """Options every command accepts. SUPPRESS keeps a value given before the command from being
    reset by the subcommand's own default."""
    common = CliParser(add_help=False)
    common.add_argument(
        "--library",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="library folder (default: $CHARACTER_STUDIO_LIBRARY, else the user data folder)",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    return common


class CommandTree:
    """Builds `character-studio GROUP ACTION ...` subcommands with the common options on each."""

    def __init__(self, description: str):
        self.common = common_options()
        self.root = CliParser(prog=PROG, description=description, parents=[self.common])
        self.groups = self.root.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(self, name: str, help: str, handler) -> argparse.ArgumentParser:
        parser = self.groups.add_parser(name, help=help, description=help, parents=[self.common])
        parser.set_defaults(handler=handler)
        return parser

    def group(self, name: str, help: str) -> argparse._SubParsersAction:
        parser = self.groups.add_parser(name, help=help, description=help, parents=[self.common])
        return parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(self, group: argparse._SubParsersAction, name: str, help: str, handler) -> argparse.ArgumentParser:
        parser = group.add_parser(name, help=help, description=help, parents=[self.common])
        parser.set_defaults(handler=handler)
        return parser
