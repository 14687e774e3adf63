"""The public functions, one import away: `answer` a question, `retrieve` passages,
`build_index` from the corpus. `import qa` exposes them lazily (qa/__init__.py).

Each is defined at its stage (qa/search/answer.py, qa/search/retriever.py,
qa/index/build.py); this module gathers them, and calibrates a new index for the verdict, so a reader finds the front door.
See docs/usage.md for examples.
"""

from __future__ import annotations

from qa.index.build import BuildSummary
from qa.index.build import build_index as _build
from qa.search.answer import answer
from qa.search.calibration import calibrate_index
from qa.search.retriever import retrieve
from qa.settings import Settings

__all__ = ["answer", "build_index", "retrieve"]


def build_index(settings: Settings | None = None, **options) -> BuildSummary:
    """`qa.index.build.build_index` (same arguments), then the verdict's calibration of
    the new index: the bank questions its corpus cannot answer, asked once, so the
    first question does not pay for it (qa/search/calibration.py)."""
    settings = settings or Settings.load()
    summary = _build(settings, **options)
    calibrate_index(settings, encoder=options.get("encoder"))
    return summary
