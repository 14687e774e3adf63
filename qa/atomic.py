"""Replace or create a file in one step, so no reader ever sees it half written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _written_beside(target: Path, write: Callable[[Path], None]) -> Iterator[Path]:
    """A temporary file beside `target`, written by `write(path)` and readable by all,
    removed on leaving whatever became of it. The name is unique (mkstemp), so two
    writers of the same target never share a half-written file."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the files it replaces are not
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def replace_file(target: Path, write: Callable[[Path], None]) -> None:
    """Call `write(path)` on a temporary file beside `target`, then rename it onto
    `target`: the last rename wins whole."""
    target = Path(target)
    with _written_beside(target, write) as tmp:
        os.replace(tmp, target)


def create_file(target: Path, write: Callable[[Path], None]) -> bool:
    """Like `replace_file`, but never over anything already at `target` (a file, a
    folder, a link, even a dangling one): False, and nothing written, when there is.
    The temporary file is hard-linked into place, which fails rather than replaces."""
    target = Path(target)
    with _written_beside(target, write) as tmp:
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
