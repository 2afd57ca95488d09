"""Before the window opens: the system libraries Qt's X11 plugin needs, named as packages to install."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studio import qt_platform
from tests.conftest import REPO_ROOT


@pytest.fixture
def fake_ldd(tmp_path, monkeypatch):
    """An `ldd` on PATH that reports two of the plugin's libraries missing, as on a fresh Debian."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldd = bin_dir / "ldd"
    ldd.write_text(
        "#!/bin/sh\n"
        "echo '\tlibQt6XcbQpa.so.6 => /opt/Qt/lib/libQt6XcbQpa.so.6 (0x0001)'\n"
        "echo '\tlibxcb-cursor.so.0 => not found'\n"
        "echo '\tlibxcb-icccm.so.4 => not found'\n"
        "echo '\tlibxcb-cursor.so.0 => not found'\n"
    )
    ldd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"\x7fELF")
    return plugin


def test_missing_libraries_become_one_install_line(fake_ldd, monkeypatch):
    assert qt_platform.missing_libraries(fake_ldd) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    monkeypatch.setattr(qt_platform, "distribution", lambda: "debian")
    problem = qt_platform.window_problem({"DISPLAY": ":0"}, plugin=fake_ldd)
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in problem
    assert "\n  sudo apt-get install -y libxcb-cursor0 libxcb-icccm4\n" in problem
    assert "QT_QPA_PLATFORM=wayland" in problem
    monkeypatch.setattr(qt_platform, "distribution", lambda: "fedora")
    assert "sudo dnf install -y xcb-util-cursor xcb-util-wm" in qt_platform.window_problem({"DISPLAY": ":0"}, plugin=fake_ldd)


def test_only_the_x11_plugin_is_checked(fake_ldd):
    for environ in (
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "wayland"},
        {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"},
    ):
        assert qt_platform.window_problem(environ, plugin=fake_ldd) is None, environ
    assert qt_platform.uses_xcb({"QT_QPA_PLATFORM": "xcb:nograb"}) and qt_platform.uses_xcb({})


def test_no_display_is_said_in_words(tmp_path, monkeypatch):
    monkeypatch.setattr(qt_platform, "missing_libraries", lambda plugin: [])
    problem = qt_platform.window_problem({}, plugin=tmp_path / "libqxcb.so")
    assert problem.startswith("No display to open the studio's window on (DISPLAY is not set)")
    assert "QT_QPA_PLATFORM=offscreen" in problem


def test_distributions_are_told_apart(tmp_path):
    release = tmp_path / "os-release"
    for text, expected in (
        ("ID=ubuntu\nID_LIKE=debian\n", "debian"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
        ("ID=arch\n", "other"),
    ):
        release.write_text(text)
        assert qt_platform.distribution(release) == expected
    assert len(qt_platform.install_lines(["libxcb-cursor.so.0"], "other")) == 2


def test_the_readme_names_every_package_the_window_needs():
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"sudo apt-get install -y {' '.join(qt_platform.DEBIAN_ALL)}\n" in readme
    assert " ".join(qt_platform.FEDORA_ALL).split()[-1] in readme
    for package in qt_platform.FEDORA_ALL:
        assert package in readme.replace("\n", " ")


def test_the_app_without_a_window_says_why_instead_of_aborting_in_qt(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "CHARACTER_STUDIO_LIBRARY")}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "main.py"), "--library", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert done.returncode == 1
    assert "QT_QPA_PLATFORM=" in done.stderr and "qt.qpa.plugin" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "lib").exists()  # refused before anything was opened
