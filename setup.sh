#!/usr/bin/env bash
# Sets up Character Studio in ./.venv (idempotent). `bash setup.sh --dev` adds the test tools.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Character Studio needs Python 3.10 or newer")'

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, pinned: left to itself pip would pick the newest torch (a multi-GB CUDA build)
# as a dependency of diffusers. On a machine with CUDA, install the matching torch wheel into
# .venv before running this script and it is kept.
if ! "$VPY" -c 'import torch' >/dev/null 2>&1; then
  "$VPY" -m pip install -q "torch==2.13.0"
fi

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
"$VPY" -m pip install -q -e ".${extras}"

# insightface asks for opencv-python, whose bundled Qt plugins clash with PySide6; the headless
# build provides the same cv2 module without them.
if "$VPY" -m pip show -q opencv-python >/dev/null 2>&1; then
  "$VPY" -m pip uninstall -q -y opencv-python
  "$VPY" -m pip install -q --force-reinstall --no-deps opencv-python-headless
fi
if "$VPY" -m pip show -q torchvision >/dev/null 2>&1; then
  echo "warning: torchvision is installed in .venv; Character Studio does not use it" >&2
fi
echo "Character Studio is set up in .venv" >&2
