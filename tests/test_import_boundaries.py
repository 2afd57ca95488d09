"""Layers point one way: studio -> core -> storage. The GUI stays light because of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--config", "pyproject.toml", "--no-cache"], cwd=cwd, capture_output=True, text=True)


def test_import_contracts_hold():
    result = lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_the_contracts_catch_a_violation(tmp_path):
    """The same contracts on a small tree where storage imports torch must fail."""
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in ("core", "storage", "studio", "cli"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "storage" / "sneaky.py").write_text("def f():\n    import torch\n    return torch\n")
    (tmp_path / "studio" / "window.py").write_text("from core import engine\n")
    (tmp_path / "core" / "engine.py").write_text("import diffusers\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "Contracts: 1 kept, 2 broken." in result.stdout


def test_light_layers_load_no_heavy_modules_at_runtime():
    code = (
        "import sys, main, cli.app, core.catalog.service, core.demo.library, storage.library;"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'PySide6', 'cv2') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
