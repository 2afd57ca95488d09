"""Names as people type them: one name however it was typed, nothing that fools a terminal."""

from __future__ import annotations

import re

import pytest

from storage.errors import Conflict
from storage.names import clean_name, file_stem, name_key

SAME_AS_ARIA = ["aria", "ARIA", "Ａｒｉａ", "Ar\u200bia", "  Aria  "]


@pytest.mark.parametrize("other", SAME_AS_ARIA)
def test_one_name_however_it_was_typed(catalog, other):
    catalog.create_project("Fight Night")
    catalog.create_character("Aria", "Fight Night")
    with pytest.raises(Conflict, match="already has a character named 'Aria'"):
        catalog.create_character(other, "Fight Night")
    assert catalog.show_character(other).name == "Aria"  # and found by it


def test_composed_and_decomposed_accents_are_one_name(catalog):
    catalog.create_project("p")
    catalog.create_character("Zo\u00eb", "p")  # NFC, as Windows types it
    with pytest.raises(Conflict, match="already has a character"):
        catalog.create_character("Zoe\u0308", "p")  # NFD, as macOS types it
    assert catalog.show_character("ZOE\u0308").name == "Zo\u00eb"


@pytest.mark.parametrize(
    "name, refusal",
    [
        ("\u200b", "needs a name with something visible"),
        ("   ", "needs a name"),
        ("Aria\x1b[31m", r"cannot hold control characters \(U\+001B"),
        ("\x1b]0;pwned\x07", r"cannot hold control characters \(U\+001B"),
        ("photo\u202egnp.exe", r"cannot hold text-direction controls \(U\+202E"),
        ("x" * 100_000, r"too long \(100000 characters, at most 200\)"),
    ],
)
def test_names_that_would_fool_a_terminal_are_refused_in_one_short_line(cli, name, refusal):
    assert cli("project", "create", "p").code == 0
    done = cli("character", "create", name, "--project", "p")
    assert done.code == 1
    [line] = done.stderr.splitlines()
    assert len(line) < 300 and "\x1b" not in line and "\u202e" not in line
    assert re.search(refusal, line), line
    assert cli("character", "list", "--json").json() == []


def test_a_project_is_found_by_any_spelling_of_its_name(cli):
    assert cli("project", "create", "Fight Night").code == 0
    assert cli("character", "create", "Aria", "--project", "fight  night").code == 0
    shown = cli("character", "show", "ARIA", "--project", "ＦＩＧＨＴ night", "--json")
    assert shown.code == 0 and shown.json()["name"] == "Aria"
    assert cli("project", "create", "FIGHT NIGHT").stderr.strip() == "error: a project named 'Fight Night' already exists"


def test_keys_and_file_stems():
    assert clean_name("  Zoe\u0308   the\tKnight ", "character") == "Zo\u00eb the Knight"
    assert name_key("Ａｒｉａ") == name_key("ar\u200dia") == "aria"
    assert file_stem("白" * 200) == "白" * 40
    assert file_stem("Aria / the Knight!") == "aria-the-knight"
    assert len(file_stem("x" * 500).encode()) <= 40
