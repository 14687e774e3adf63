"""Where the measuring tools find their data: the clone they run from, with the shared
evaluation sets beside it (`../shared/eval`, `../shared/bench`) as in CI.

Measurement is done from a clone, not from an installed package, so paths are taken
from this file's place in the repository (qa/eval/ is two folders below its root).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
BUNDLED_CORPUS = ROOT / "corpus"
EVAL_DIR = ROOT / "eval"
CACHE = ROOT / ".cache"
