"""Character Studio: `python main.py` opens the studio; `python main.py COMMAND ...` is the CLI."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from core.common.offline import configure_environment

    configure_environment()

    # No command word (only --library DIR, or nothing at all) opens the window.
    window_options = argparse.ArgumentParser(add_help=False)
    window_options.add_argument("--library")
    known, rest = window_options.parse_known_args(argv)
    if not rest or rest == ["gui"]:
        # Before Qt loads: a missing system library would otherwise abort inside Qt, naming a
        # plugin rather than the package to install.
        from studio.qt_platform import window_problem

        problem = window_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 1
        from studio.app import run_studio

        return run_studio(known.library)
    from cli.app import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
