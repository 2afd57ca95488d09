"""What a name in the library may be, and when two names are the same name.

Names are typed by people and read back by people. 'Zoë' typed on a Mac (decomposed, NFD) and on
Windows (composed, NFC), 'Aria' and 'aria', a full-width 'Ａｒｉａ' from a CJK keyboard, and 'Aria'
with a zero-width space pasted from a web page all mean one character. So a name is stored NFC
with its spaces trimmed and collapsed, and names are compared by a key: NFKC, case-folded, with
invisible formatting characters left out. Names that would fool or break a terminal or a file
list (control characters such as ANSI escapes, text-direction overrides) are refused.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

from storage.errors import Conflict

T = TypeVar("T")

MAX_NAME_LENGTH = 200
SHOWN_LENGTH = 60  # how much of a refused name a message repeats
# Text-direction controls: 'photo' + U+202E + 'gnp.exe' shows as 'photoexe.png', so a list could lie.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown(text: str, limit: int = SHOWN_LENGTH) -> str:
    """A name as a message repeats it: control and invisible characters written as escapes, and
    cut to `limit` characters."""
    out = []
    for char in text[:limit]:
        if unicodedata.category(char) in ("Cc", "Cf") or char in BIDI_CONTROLS:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out) + (f"… ({len(text)} characters)" if len(text) > limit else "")


def name_key(name: str) -> str:
    """What two names must share to be the same name: NFKC, case-folded, without invisible
    formatting characters (zero-width spaces and joiners), spaces collapsed."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    visible = "".join(char for char in folded if unicodedata.category(char) != "Cf")
    return " ".join(visible.split())


def clean_name(name: object, what: str) -> str:
    """The name as stored: NFC, trimmed, inner whitespace collapsed to single spaces. Refuses one
    that is empty or invisible, too long, or holds control or text-direction characters."""
    if not isinstance(name, str):
        raise Conflict(f"a {what} name must be text, got {type(name).__name__}")
    cleaned = " ".join(unicodedata.normalize("NFC", name).split())
    for char in cleaned:
        if unicodedata.category(char) == "Cc":
            raise Conflict(f"a {what} name cannot hold control characters (U+{ord(char):04X} in '{shown(cleaned)}')")
        if char in BIDI_CONTROLS:
            raise Conflict(f"a {what} name cannot hold text-direction controls (U+{ord(char):04X} in '{shown(cleaned)}')")
    if not name_key(cleaned):
        raise Conflict(f"a {what} needs a name with something visible in it" if cleaned else f"a {what} needs a name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise Conflict(f"{what} name is too long ({len(cleaned)} characters, at most {MAX_NAME_LENGTH}): '{shown(cleaned)}'")
    return cleaned


def same_name(a: str, b: str) -> bool:
    return name_key(a) == name_key(b)


def matching(items: Iterable[T], name: str, name_of: Callable[[T], str]) -> list[T]:
    """Those of `items` whose name is the same name as `name`; only the exact matches when some
    match exactly (a library from before this rule may hold both 'Aria' and 'aria')."""
    key = name_key(name)
    same = [item for item in items if name_key(name_of(item)) == key]
    exact = [item for item in same if name_of(item) == name]
    return exact or same


def file_stem(name: str, limit: int = 40) -> str:
    """A name as part of a file name: letters and digits kept (any script), the rest as single
    dashes, at most `limit` characters, so that a long name never makes a file name too long."""
    text = "".join(char if char.isalnum() else "-" for char in unicodedata.normalize("NFKC", name).lower())
    return "-".join(part for part in text.split("-") if part)[:limit].strip("-")
