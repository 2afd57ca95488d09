"""The lock files against pyproject.toml and against what setup.sh installed.

setup.sh installs requirements.lock (+ requirements-dev.lock) with --no-deps, so the lock must be
the whole, consistent set: every dependency pyproject.toml names, pinned inside its range, and
every package a locked package needs, pinned too. A lock edited by hand or left behind after a
pyproject change fails here, and so does a venv that did not come from the lock.
"""

from __future__ import annotations

import re
from importlib import metadata

import pytest
import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO_ROOT

APP_LOCK = REPO_ROOT / "requirements.lock"
DEV_LOCK = REPO_ROOT / "requirements-dev.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)$")
# What a locked package asks for -> what the lock gives instead, on purpose.
STAND_INS = {"opencv-python": "opencv-python-headless"}  # the same cv2, without Qt plugins that clash with PySide6
NEVER = {"torchvision", "opencv-python"}


def read_lock(path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}:{number}: {line!r} is not an exact pin (name==version)"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{path.name}:{number}: {name} is pinned twice"
        pins[name] = Version(match.group(2))
    return pins


@pytest.fixture(scope="module")
def app_pins() -> dict[str, Version]:
    return read_lock(APP_LOCK)


@pytest.fixture(scope="module")
def dev_pins(app_pins) -> dict[str, Version]:
    pins = read_lock(DEV_LOCK)
    both = set(pins) & set(app_pins)
    assert not both, f"pinned in both lock files: {sorted(both)}"
    return pins


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def unmet(requirements: list[str], pins: dict[str, Version], where: str) -> list[str]:
    """What pyproject asks for that the pins do not give, one line each."""
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} is in pyproject.toml but not in {where}: run tools/refresh_lock.sh")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(
                f"{where} pins {name}=={pins[name]}, outside pyproject.toml's {requirement.specifier}: run tools/refresh_lock.sh"
            )
    return problems


def test_every_dependency_in_pyproject_is_pinned_inside_its_range(project, app_pins, dev_pins):
    assert unmet(project["dependencies"], app_pins, "requirements.lock") == []
    assert unmet(project["optional-dependencies"]["dev"], {**app_pins, **dev_pins}, "the lock files") == []


def test_the_lock_never_holds_what_breaks_the_app(app_pins, dev_pins):
    assert not NEVER & (set(app_pins) | set(dev_pins))
    assert app_pins[canonicalize_name("torch")].local is None  # a CUDA build of the same release satisfies it too


def requirements_of(name: str, extras: frozenset[str] = frozenset()) -> list[Requirement]:
    """What an installed package needs on this machine (markers evaluated, its asked-for extras in)."""
    needed = []
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        if requirement.marker is None:
            needed.append(requirement)
            continue
        for extra in {""} | set(extras):
            if requirement.marker.evaluate({**default_environment(), "extra": extra}):
                needed.append(requirement)
                break
    return needed


def test_the_installed_venv_is_the_lock_and_the_lock_is_closed(app_pins, dev_pins):
    """What setup.sh installed equals the lock, and every package in it has what it needs, at a
    version it accepts: the lock is a whole set, not a list of favourites."""
    pins = {**app_pins, **dev_pins}
    for name, pinned in pins.items():
        installed = Version(metadata.version(name))
        assert Version(installed.base_version if name == "torch" else str(installed)) == pinned, (
            f"{name} {installed} is installed but the lock says {pinned}: run `bash setup.sh --dev`"
        )
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(name, frozenset[str]()) for name in pins]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for requirement in requirements_of(name, extras):
            wanted = canonicalize_name(requirement.name)
            given = canonicalize_name(STAND_INS.get(wanted, wanted))
            assert given in pins, f"{name} needs {requirement}, which no lock file pins: run tools/refresh_lock.sh"
            if given == wanted:
                assert requirement.specifier.contains(pins[given], prereleases=True), (
                    f"{name} needs {requirement}, the lock has {pins[given]}"
                )
            todo.append((given, frozenset(requirement.extras)))


def test_a_lock_that_disagrees_with_pyproject_is_caught(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\ndiffusers==0.29.0\ntorch==2.13.0\n")
    problems = unmet(["diffusers>=0.30,<0.43", "torch>=2.2,<3", "peft>=0.12"], read_lock(lock), "requirements.lock")
    assert problems == [
        "requirements.lock pins diffusers==0.29.0, outside pyproject.toml's <0.43,>=0.30: run tools/refresh_lock.sh",
        "peft is in pyproject.toml but not in requirements.lock: run tools/refresh_lock.sh",
    ]
    lock.write_text("diffusers>=0.30\n")
    with pytest.raises(AssertionError, match="not an exact pin"):
        read_lock(lock)
