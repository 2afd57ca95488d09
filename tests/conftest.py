"""Shared fixtures: a fresh library per test and a CLI runner that uses a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Qt must never try to open a display in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Under pytest-xdist every core runs a worker already: one thread each (and in the CLI processes
# they start) instead of every worker's torch spreading over every core.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def library(tmp_path):
    from storage.library import open_library

    lib = open_library(tmp_path / "library")
    yield lib
    lib.close()


@pytest.fixture
def catalog(library):
    from core.catalog.service import Catalog

    return Catalog(library)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def cli(tmp_path):
    """Runs `python main.py ARGS` against a library in tmp_path, as a user would."""
    library_dir = tmp_path / "cli-library"

    def run(*args: str, library: Path | None = library_dir, env: dict[str, str] | None = None) -> CliResult:
        full_env = {k: v for k, v in os.environ.items() if k != "CHARACTER_STUDIO_LIBRARY"}
        full_env.update(env or {})
        command = [sys.executable, str(REPO_ROOT / "main.py")]
        if library is not None:
            command += ["--library", str(library)]
        done = subprocess.run(command + list(args), capture_output=True, text=True, env=full_env, cwd=REPO_ROOT, timeout=120)
        return CliResult(done.returncode, done.stdout, done.stderr)

    run.library_dir = library_dir
    return run


@pytest.fixture(autouse=True)
def guard_gui_thread(request, monkeypatch):
    """Studio tests fail when studio code opens a library session on the GUI thread
    (tests/gui_thread_guard.py)."""
    if not request.node.path.name.startswith("test_studio_"):
        yield
        return
    from tests.gui_thread_guard import install

    offenders = install(monkeypatch)
    yield
    if offenders:
        pytest.fail("library sessions opened on the GUI thread:\n" + "\n".join(dict.fromkeys(offenders)), pytrace=False)
