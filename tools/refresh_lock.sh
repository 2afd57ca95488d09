#!/usr/bin/env bash
# Renews requirements.lock and requirements-dev.lock: the newest releases that pyproject.toml's
# ranges allow, resolved in a scratch venv, written as exact pins. Upgrading is a deliberate change:
# run this, then `bash .ci/run` (setup.sh installs the new lock), and commit the lock with the fixes
# the new releases need.
#
#   bash tools/refresh_lock.sh            # torch stays at the locked version
#   TORCH=2.14.1 bash tools/refresh_lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
TORCH="${TORCH:-$(sed -n 's/^torch==//p' requirements.lock 2>/dev/null || true)}"
TORCH="${TORCH:-2.13.0}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PYTHON" -m venv "$scratch/venv"
pip=("$scratch/venv/bin/python" -m pip)

# torch first and pinned, as setup.sh does (an open range would pull a multi-GB CUDA build).
"${pip[@]}" install -q "torch==$TORCH"
"${pip[@]}" install -q --upgrade setuptools
"${pip[@]}" install -q -e .
# insightface asks for opencv-python, whose Qt plugins clash with PySide6; the app's own
# dependency, opencv-python-headless, provides the same cv2.
"${pip[@]}" uninstall -q -y opencv-python 2>/dev/null || true

freeze() {
  # Exact pins, the editable project itself left out; torch without its local build label
  # (+cpu/+cu128), so a CUDA build of the same release satisfies the pin.
  "${pip[@]}" freeze --all --exclude-editable | grep -v -i -E '^(pip|character-studio)==' | grep -v '^#' |
    sed -E 's/^(torch==[^+]+)\+.*/\1/' | LC_ALL=C sort -f
}

header() {
  echo "# $1"
  echo "# Exact, tested versions: setup.sh installs these with --no-deps. Renew with"
  echo "# tools/refresh_lock.sh (never by hand); tests/test_lock.py checks it against pyproject.toml."
  echo "# Resolved on $("$scratch/venv/bin/python" -c 'import platform, sys; print(f"Python {sys.version_info[0]}.{sys.version_info[1]}, {platform.system()} {platform.machine()}")')."
}

freeze > "$scratch/app.txt"
{ header "Character Studio's runtime dependencies."; cat "$scratch/app.txt"; } > requirements.lock

# The dev tools on top, the runtime set held where it is.
"${pip[@]}" install -q -c requirements.lock -e ".[dev]"
"${pip[@]}" uninstall -q -y opencv-python 2>/dev/null || true
freeze > "$scratch/all.txt"
{ header "The test and lint tools, installed on top of requirements.lock by setup.sh --dev."
  LC_ALL=C comm -13 <(LC_ALL=C sort "$scratch/app.txt") <(LC_ALL=C sort "$scratch/all.txt") | LC_ALL=C sort -f; } > requirements-dev.lock

echo "requirements.lock: $(grep -c '==' requirements.lock) pins; requirements-dev.lock: $(grep -c '==' requirements-dev.lock) pins" >&2
git --no-pager diff --stat -- requirements.lock requirements-dev.lock 2>/dev/null || true
