#!/usr/bin/env bash
# Sets up Character Studio in ./.venv from the lock files: the exact, tested versions of every
# package (requirements.lock; with --dev also requirements-dev.lock). Run it again at any time:
# when the venv already matches, it changes nothing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "Character Studio needs Python 3.10 or newer (3.11 is the tested one): install python3 and python3-venv" >&2
  exit 1
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Character Studio needs Python 3.10 or newer (3.11 is the tested one)")'
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || { echo "Could not make .venv: on Debian/Ubuntu install python3-venv" >&2; exit 1; }
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_install() { "$VPY" -m pip install -q --no-deps "$@"; }

locks=(requirements.lock)
[ "${1:-}" = "--dev" ] && locks+=(requirements-dev.lock)

# torch first, at the locked version, and only when the venv has none: left to itself pip would
# pick the newest torch (a multi-GB CUDA build). On a machine with CUDA, install the matching torch
# wheel into .venv before running this script and it is kept.
torch_pin=$(grep -E '^torch==' requirements.lock)
if ! "$VPY" -c 'import torch' >/dev/null 2>&1; then
  "$VPY" -m pip install -q "$torch_pin"
elif ! "$VPY" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '${torch_pin#torch==}')"; then
  echo "note: keeping the torch already in .venv ($("$VPY" -c 'import torch; print(torch.__version__)')); the tested one is ${torch_pin#torch==}" >&2
fi

# Everything else exactly as locked, with no resolving: the lock is the whole set, so nothing new
# can slip in (insightface's opencv-python among them: the lock's opencv-python-headless gives the
# same cv2 without Qt plugins that clash with PySide6).
for lock in "${locks[@]}"; do
  pip_install -r <(grep -v -E '^torch==' "$lock")
done
if "$VPY" -m pip show -q opencv-python >/dev/null 2>&1; then  # left by an older setup
  "$VPY" -m pip uninstall -q -y opencv-python
  pip_install --force-reinstall opencv-python-headless=="$(sed -n 's/^opencv-python-headless==//p' requirements.lock)"
fi

# The app itself, editable; only when pyproject.toml changed since the last time (its entry points
# and package list live there), so a second run rewrites nothing.
stamp=.venv/.character-studio-pyproject
if [ ! -x .venv/bin/character-studio ] || ! sha256sum --status -c "$stamp" 2>/dev/null; then
  pip_install --no-build-isolation -e .
  sha256sum pyproject.toml > "$stamp"
fi

if "$VPY" -m pip show -q torchvision >/dev/null 2>&1; then
  echo "warning: torchvision is installed in .venv; Character Studio does not use it" >&2
fi
# The window's system libraries (Linux): say which are missing and the one line that installs them.
# The CLI and the worker run without them.
if [ "$(uname -s)" = Linux ] && ! "$VPY" -m studio.qt_platform --missing-only; then
  echo "(setup is done: the headless commands work now; the window after that install)" >&2
fi
echo "Character Studio is set up in .venv" >&2
