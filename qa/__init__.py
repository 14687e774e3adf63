"""Retrieval question answering over Chinese news articles, with cited passages.

    >>> import qa
    >>> result = qa.answer("知识城与新加坡签署了多少份合作备忘录？")  # doctest: +SKIP
    >>> print(result.passages[0].citation)  # doctest: +SKIP

Importing `qa` is cheap: the public names below are loaded on first use, so the CLI's
`--help`, the error classes and the settings never pay for numpy, FAISS or the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it, imported when the name is first used.
_PUBLIC = {
    "answer": "qa.api",
    "retrieve": "qa.api",
    "build_index": "qa.api",
    "Answer": "qa.schema",
    "Filter": "qa.schema",
    "Hit": "qa.schema",
    "Settings": "qa.settings",
}

__all__ = ["Answer", "Filter", "Hit", "Settings", "__version__", "answer", "build_index", "retrieve"]

if TYPE_CHECKING:
    from qa.api import answer, build_index, retrieve
    from qa.schema import Answer, Filter, Hit
    from qa.settings import Settings


def __getattr__(name: str):
    import importlib

    module = _PUBLIC.get(name)
    if module is None:
        # `import qa; qa.schema.Filter` worked when this file imported everything:
        # a submodule is still an attribute, imported on first use.
        try:
            return importlib.import_module(f"qa.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"qa.{name}":
                raise
            raise AttributeError(f"module 'qa' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(name for name in set(globals()) | set(__all__) if not name.startswith("_") or name == "__version__")
