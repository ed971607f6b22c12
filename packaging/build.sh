#!/usr/bin/env bash
# Build the ccdgui application with PyInstaller: dist/ccdgui/ (one folder) and
# dist/ccdgui-<version>-linux-<arch>.tar.gz. One command from a fresh clone:  bash packaging/build.sh
# The build runs in a clean virtual environment holding only ccdgui's runtime dependencies and
# PyInstaller (PYTHON=/path/to/python3 chooses the interpreter; default: python3 on PATH).
# Safe to re-run: the venv, build/pyinstaller/, dist/ccdgui/ and the archive are remade each time.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONPATH PYTHONHOME  # nothing from the caller's environment may leak into the frozen app
PYTHON="${PYTHON:-python3}"
VENV=build/pyinstaller-venv
started=$(date +%s)

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q . pyinstaller
if "$VENV/bin/python" -c "import pytest" 2>/dev/null; then
  echo "build.sh: pytest is importable in the build environment; it breaks astropy's freeze" >&2
  exit 1
fi

# From inside build/, so that the installed ccdgui (with its resources package) is analysed, not the
# source folder of the same name.
(cd build && "../$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath ../dist --workpath pyinstaller ../packaging/ccdgui.spec)

version=$(QT_QPA_PLATFORM=offscreen dist/ccdgui/ccdgui --version | awk '{print $2}')
QT_QPA_PLATFORM=offscreen dist/ccdgui/ccdgui --smoke-test
archive="dist/ccdgui-${version}-linux-$(uname -m).tar.gz"
tar -C dist --owner=0 --group=0 --numeric-owner -czf "$archive" ccdgui
echo "bundle:  $(du -sh dist/ccdgui | cut -f1)  dist/ccdgui/"
echo "archive: $(du -sh "$archive" | cut -f1)  $archive"
echo "built in $(( $(date +%s) - started )) s"
