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

# Debian packages, when run as root:
# - chromium and fonts-noto-cjk: the web test drives a real headless Chromium (Debian's,
#   as `playwright install` cannot download offline); the CJK font makes Chinese
#   readable in its screenshots and in the pages the PDF and OCR tests print;
# - tesseract-ocr with its Chinese models: the OCR engine that reads scans (qa/ingest/ocr.py).
# Not fatal: without them scans are skipped with a reason, and the tests that need
# them are skipped with a message.
PACKAGES="chromium fonts-noto-cjk tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra tesseract-ocr-chi-sim-vert"
missing() {
  ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "noto.*cjk" ||
    ! command -v tesseract >/dev/null 2>&1 || ! tesseract --list-langs 2>/dev/null | grep -q chi_tra
}
if missing; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $PACKAGES (apt)"
    { apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null; } ||
      echo "note: could not install them; scans will be skipped, and the browser, PDF and OCR tests too"
  else
    echo "note: some of $PACKAGES are missing; scans will be skipped, and the browser, PDF and OCR tests too (apt-get install $PACKAGES)"
  fi
fi
echo "ready: .venv"
