"""Replace or create a file in one step, so no reader ever sees it half written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_file(target: Path, write: Callable[[Path], None]) -> None:
    """Call `write(path)` on a temporary file beside `target`, then rename it onto
    `target`. The temporary name is unique (mkstemp), so two writers of the same
    target never share a half-written file; the last rename wins whole."""
    target = Path(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the files it replaces are not
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def create_file(target: Path, write: Callable[[Path], None]) -> bool:
    """Like `replace_file`, but never over anything already at `target` (a file, a
    folder, a link, even a dangling one): False, and nothing written, when there is.
    The temporary file is hard-linked into place, which fails rather than replaces."""
    target = Path(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)
