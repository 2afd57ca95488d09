"""The model registry as the studio reaches it: `character-studio model ...` in a child process.

Why a child process: inspecting a weights file may import onnxruntime (pose and face models) or
torch (a pickle checkpoint the user allowed), and hashing a multi-GB file takes a while; neither
belongs in the GUI process, which never imports torch. The CLI prints JSON with --json and a
readable "error: ..." line on failure, which becomes a ModelCommandError with that line.
Blocking: call these from the thread pool (studio.background), never on the GUI thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from storage.errors import LibraryError

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 3600  # hashing a large checkpoint on a slow disk


class ModelCommandError(LibraryError):
    """The CLI refused: the message is its error line, written for people."""


def run_model_command(library_root: Path, *args: str) -> Any:
    command = [sys.executable, str(REPO_ROOT / "main.py"), "--library", str(library_root), "model", *args, "--json"]
    env = {key: value for key, value in os.environ.items() if key != "CHARACTER_STUDIO_LIBRARY"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=TIMEOUT_S)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        raise ModelCommandError("\n".join(errors) or (lines[-1] if lines else f"model {args[0]} failed (exit code {done.returncode})"))
    return json.loads(done.stdout) if done.stdout.strip() else None


def list_models(library_root: Path, kind: str | None = None) -> list[dict[str, Any]]:
    return run_model_command(library_root, "list", *(["--kind", kind] if kind else []))


def add_model(library_root: Path, path: Path | str, control_type: str | None = None, allow_pickle: bool = False) -> dict[str, Any]:
    args = ["add", str(path)]
    if control_type:
        args += ["--control-type", control_type]
    if allow_pickle:
        args.append("--allow-pickle")
    return run_model_command(library_root, *args)


def is_pickle_refusal(message: str) -> bool:
    return "is a pickle file" in message
