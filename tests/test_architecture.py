"""The map in the repo (docs/ARCHITECTURE.md) matches the house: every path it names exists, its
job-kind table is the worker's table, and every core module lives in a feature package."""

from __future__ import annotations

import re

from core.jobs.kinds import JOB_KINDS
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "ARCHITECTURE.md"


def test_every_path_the_map_names_exists():
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:core|storage|studio|cli|tools|tests|bench|resources)/[\w./]*)`", text))
    assert named, "the map names no paths"
    missing = sorted(path for path in named if not (REPO_ROOT / path.rstrip("/")).exists())
    assert missing == [], f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_the_maps_job_kind_table_is_the_workers():
    rows = re.findall(r"^\| `([\w-]+)` \| `([\w/]+\.py)` \(`(\w+)`\) \| (yes|no) \| (yes|no) \|$", DOC.read_text(encoding="utf-8"), re.M)
    documented = {
        kind: (f"{path[:-3].replace('/', '.')}:{function}", interactive == "yes", training == "yes")
        for kind, path, function, interactive, training in rows
    }
    actual = {name: (kind.handler, kind.interactive, kind.training) for name, kind in JOB_KINDS.items()}
    assert documented == actual


def test_every_core_module_lives_in_a_feature_package_with_a_map_of_its_own():
    loose = sorted(p.name for p in (REPO_ROOT / "core").glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules outside a feature package in core/: {loose}"
    for package in sorted(p for p in (REPO_ROOT / "core").iterdir() if (p / "__init__.py").exists()):
        docstring = (package / "__init__.py").read_text(encoding="utf-8")
        assert docstring.startswith('"""'), f"{package.name}/__init__.py says nothing about its package"
