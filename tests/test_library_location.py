"""Where the library lives when the user does not say."""

from __future__ import annotations

from pathlib import Path

from storage.location import LIBRARY_ENV_VAR, resolve_library_dir


def test_flag_beats_env_beats_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(LIBRARY_ENV_VAR, str(tmp_path / "env"))
    assert resolve_library_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_library_dir(None) == tmp_path / "env"
    monkeypatch.delenv(LIBRARY_ENV_VAR)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_library_dir(None) == tmp_path / "xdg" / "CharacterStudio" / "library"


def test_a_library_folder_can_be_moved_whole(tmp_path):
    from core.catalog.service import Catalog
    from core.demo.library import build_demo_library
    from storage.library import open_library

    with open_library(tmp_path / "old") as library:
        build_demo_library(Catalog(library))
    Path(tmp_path / "old").rename(tmp_path / "new")
    with open_library(tmp_path / "new") as library:
        aria = Catalog(library).show_character("Aria")
        assert all(Path(r.path).exists() and r.path.startswith(str(tmp_path / "new")) for r in aria.references)
