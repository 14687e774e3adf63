"""The few exceptions a user can meet; each message says what is wrong and what to do."""

from __future__ import annotations


class QAError(Exception):
    """Base class: anything the CLI reports as one line instead of a traceback."""


class QuestionError(QAError, ValueError):
    """The question is empty, too long, or otherwise unusable."""


class IndexNotFoundError(QAError):
    """No index has been built in the index folder yet."""


class IndexCorruptError(QAError):
    """The index folder exists but its files are missing, truncated or inconsistent."""


class StaleIndexError(QAError):
    """The index was built from a different corpus or with different settings."""


class CorpusError(QAError):
    """The corpus folder or one of its files cannot be read."""


class ModelError(QAError):
    """The embedding model cannot be found, converted or loaded."""


class SettingsError(QAError, ValueError):
    """A setting or argument has a value outside what it allows (k, chunk size, port, ...)."""


class IndexWriteError(QAError):
    """The index folder cannot be written, or another build is writing it."""


class StoreUnavailableError(QAError):
    """The vector store (Milvus) cannot be reached or opened, or refused an operation."""
