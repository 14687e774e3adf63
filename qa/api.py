"""The public functions, one import away: `answer` a question, `retrieve` passages,
`build_index` from the corpus. `import qa` exposes them lazily (qa/__init__.py).

Each is defined at its stage (qa/search/answer.py, qa/search/retriever.py,
qa/index/build.py); this module only gathers them, so a reader finds the front door.
See docs/usage.md for examples.
"""

from __future__ import annotations

from qa.index.build import build_index
from qa.search.answer import answer
from qa.search.retriever import retrieve

__all__ = ["answer", "build_index", "retrieve"]
