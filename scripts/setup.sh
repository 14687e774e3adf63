#!/usr/bin/env bash
# Set up a virtual environment in .venv with everything the project and its tests need.
# Safe to run again: pip finds everything installed and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch is pinned in pyproject.toml: 2.13.0 is a CPU build; an unpinned torch would pull
# several GB of CUDA libraries.
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# The web test drives a real headless Chromium. Debian's package is used because
# browser downloads (`playwright install`) are not possible offline; the CJK font
# makes Chinese readable in its screenshots.
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and fonts-noto-cjk for the browser tests and the PDF tests (apt)"
    # Not fatal: without a browser only the browser tests and the PDF tests (which print
    # a page to PDF with it) are skipped.
    { apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } ||
      echo "note: could not install chromium; the browser and PDF tests will be skipped"
  else
    echo "note: chromium is not installed; the browser and PDF tests will be skipped (apt-get install chromium fonts-noto-cjk)"
  fi
fi
echo "ready: .venv"
