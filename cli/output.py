"""What a command prints: one JSON document with --json, readable text otherwise."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any

from storage.names import BIDI_CONTROLS


def terminal_safe(text: str) -> str:
    """Text as the terminal may show it: control characters (an ANSI or OSC escape in a name
    from an old library or a file) and text-direction controls written as visible escapes."""
    if text.isprintable():
        return text
    return "".join(
        f"\\u{ord(char):04x}" if (unicodedata.category(char) == "Cc" and char not in "\n\t") or char in BIDI_CONTROLS else char
        for char in text
    )


class Output:
    def __init__(self, json_mode: bool):
        self.json = json_mode

    def emit(self, data: Any, text: str) -> None:
        if self.json:
            json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            print(terminal_safe(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> str:
    if not rows:
        return empty
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (headers, *rows)]
    return "\n".join(lines)
