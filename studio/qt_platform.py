"""Whether this machine can open the studio's window, and what to install when it cannot.

PySide6's wheels carry Qt itself but not the system libraries its X11 platform plugin (xcb) links
to; since Qt 6.5 these include libxcb-cursor0, which few desktops have. Without them Qt aborts
with a message that names a plugin, not a package. This module lists the plugin's missing
libraries (with `ldd`) and maps each to its Debian/Ubuntu and Fedora package, so that setup.sh and
the app print the one install line that fixes it.

It imports no Qt (it finds the plugin on disk), so it runs before a QApplication exists, and as
`python -m studio.qt_platform` from setup.sh.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

# soname -> (Debian/Ubuntu package, Fedora package). Every library the xcb plugin and Qt's GUI
# libraries load beyond glibc's own; what the README's install line names.
PACKAGES: dict[str, tuple[str, str]] = {
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
}

# The whole set, for the README and for a machine where ldd cannot say which are missing.
DEBIAN_ALL = sorted({debian for debian, _ in PACKAGES.values()})
FEDORA_ALL = sorted({fedora for _, fedora in PACKAGES.values()})

WAYS_OUT = "or try QT_QPA_PLATFORM=wayland on a Wayland desktop; every job also runs without a window (`character-studio --help`)"


def xcb_plugin() -> Path | None:
    """PySide6's X11 platform plugin, found without loading Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        plugin = Path(location) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.exists():
            return plugin
    return None


def missing_libraries(plugin: Path) -> list[str]:
    """Sonames the plugin (or a library it loads) needs and the system lacks, as ldd reports them.
    Empty when ldd is not there to ask."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        listing = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = []
    for line in listing.splitlines():
        name, _, found = line.strip().partition("=>")
        if "not found" in found and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def distribution(os_release: Path = Path("/etc/os-release")) -> str:
    """ "debian" (Debian, Ubuntu, Mint...), "fedora" (Fedora, RHEL, Rocky...) or "other"."""
    try:
        fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
    except OSError:
        return "other"
    ids = " ".join(fields.get(key, "").strip('"').lower() for key in ("ID", "ID_LIKE")).split()
    if any(i in ("debian", "ubuntu") for i in ids):
        return "debian"
    if any(i in ("fedora", "rhel", "centos") for i in ids):
        return "fedora"
    return "other"


def install_lines(missing: list[str], distro: str) -> list[str]:
    """The command that installs what provides the missing libraries, for this distribution (both
    when it is neither)."""
    known = [PACKAGES[name] for name in missing if name in PACKAGES]
    debian = sorted({d for d, _ in known}) if len(known) == len(missing) else DEBIAN_ALL
    fedora = sorted({f for _, f in known}) if len(known) == len(missing) else FEDORA_ALL
    lines = {
        "debian": f"sudo apt-get install -y {' '.join(debian)}",
        "fedora": f"sudo dnf install -y {' '.join(fedora)}",
    }
    return [lines[distro]] if distro in lines else list(lines.values())


def uses_xcb(environ: dict[str, str]) -> bool:
    """Whether Qt will pick its X11 plugin: asked for by name, or the default outside a Wayland
    session."""
    asked = environ.get("QT_QPA_PLATFORM", "").strip().lower()
    if asked:
        return asked.split(";")[0].split(":")[0] == "xcb"
    wayland = environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return not wayland


def window_problem(environ: dict[str, str] | None = None, plugin: Path | None = None) -> str | None:
    """Why the window cannot open here, in words with the fix; None when nothing stands in its way
    (or this is not a Linux desktop, where Qt brings what it needs)."""
    environ = dict(os.environ if environ is None else environ)
    if not sys.platform.startswith("linux") or not uses_xcb(environ):
        return None
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return None  # not a PySide6 wheel layout: let Qt speak for itself
    missing = missing_libraries(plugin)
    if missing:
        fix = "\n  ".join(install_lines(missing, distribution()))
        return (
            f"The studio's window needs system libraries this machine lacks ({', '.join(missing)}). Install them with:\n  {fix}\n"
            f"{WAYS_OUT[0].upper()}{WAYS_OUT[1:]}."
        )
    if not environ.get("DISPLAY"):
        return (
            "No display to open the studio's window on (DISPLAY is not set). Run it on a desktop, under "
            "xvfb-run, or with QT_QPA_PLATFORM=offscreen for a window nobody sees; " + WAYS_OUT.split("; ", 1)[1] + "."
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """`python -m studio.qt_platform`: says what the window lacks (exit 1) or nothing (exit 0).
    With --missing-only a machine without a display is not a problem (setup.sh on a server)."""
    args = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ)
    if "--missing-only" in args:
        environ.setdefault("DISPLAY", ":0")
    problem = window_problem(environ)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
