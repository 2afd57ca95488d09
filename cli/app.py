"""`character-studio COMMAND ...`: the headless command line.

Exit codes: 0 done, 1 the library refused the operation (one line per reason on stderr),
2 bad usage. No traceback reaches the user unless --debug asks for it.
"""

from __future__ import annotations

import sys
import traceback

from cli import (
    demo_command,
    generate_commands,
    job_commands,
    library_commands,
    matrix_commands,
    model_commands,
    pose_commands,
    scene_commands,
    sheet_commands,
    train_commands,
)
from cli.output import Output, terminal_safe
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.common.log_file import log_to_library
from storage.errors import LibraryError
from storage.library import open_library
from storage.location import resolve_library_dir


def build_parser():
    tree = CommandTree("Character Studio: consistent images of your original characters, offline.")
    library_commands.register(tree)
    generate_commands.register(tree)
    scene_commands.register(tree)
    sheet_commands.register(tree)
    matrix_commands.register(tree)
    demo_command.register(tree)
    model_commands.register(tree)
    pose_commands.register(tree)
    job_commands.register(tree)
    train_commands.register(tree)
    info = tree.command("library", "where the library is and what it holds", library_info)
    info.add_argument("what", choices=["info"], metavar="info")
    return tree.root


def library_info(catalog: Catalog, args, out: Output) -> None:
    library = catalog.library
    projects = catalog.list_projects()
    characters = catalog.list_characters()
    data = {
        "library": str(library.root),
        "database": str(library.db.path),
        "projects": len(projects),
        "characters": len(characters),
        "references": sum(c.reference_count for c in characters),
    }
    out.emit(data, "\n".join(f"{key}: {value}" for key, value in data.items()))


def run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    out = Output(getattr(args, "json", False))
    try:
        with open_library(resolve_library_dir(getattr(args, "library", None))) as library:
            log_to_library(library.root)  # the libraries' warnings go there, not to the terminal
            args.handler(Catalog(library), args, out)
        return 0
    except LibraryError as exc:
        if debug:
            traceback.print_exc()
        for line in str(exc).splitlines():
            print(terminal_safe(line if line.startswith(("refused", "nothing")) else f"error: {line}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: the reader has all it wanted.
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if debug:
            traceback.print_exc()
        else:
            print(terminal_safe(f"error: {type(exc).__name__}: {exc} (run again with --debug for details)"), file=sys.stderr)
        return 1
