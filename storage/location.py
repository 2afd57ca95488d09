"""Where the library lives: --library DIR, else $CHARACTER_STUDIO_LIBRARY, else the user data dir."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

LIBRARY_ENV_VAR = "CHARACTER_STUDIO_LIBRARY"


def resolve_library_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(LIBRARY_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return Path(user_data_dir("CharacterStudio", appauthor=False)) / "library"
