"""The config file: settings a user keeps beside the corpus, read before the environment.

Precedence, later winning: defaults < the config file < `QA_*` environment variables
< command-line flags and function arguments. The file is `qa.toml` in the current
folder, or the one `QA_CONFIG` (`qa --config FILE`) names. Keys are the settings'
names (`corpus_dir`, `chunk_size`, `port`, ... and the web chat's `auth`, `share`,
`rate_limit`), at the top level or under a `[qa]` table; relative paths are taken
from the file's folder, so the file means the same wherever `qa` is started.
See docs/settings.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from qa.errors import SettingsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE = "qa.toml"
CONFIG_VARIABLE = "QA_CONFIG"
# Settings that name folders: relative to the config file, not to where qa runs.
PATH_KEYS = ("corpus_dir", "index_dir", "cache_dir")
# The web chat's settings (`qa.serve.limits.WebSettings`), kept in the same file.
WEB_KEYS = ("auth", "share", "rate_limit", "trusted_proxies")


def config_path() -> Path | None:
    """The config file in force: `$QA_CONFIG`, else `./qa.toml` if there is one.

    Raises:
        SettingsError: QA_CONFIG names a file that does not exist.
    """
    named = os.environ.get(CONFIG_VARIABLE, "")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SettingsError(
                f"the config file {path} (QA_CONFIG or --config) is not a file; fix the path, or unset QA_CONFIG"
            )
        return path
    path = Path(CONFIG_FILE)
    return path if path.is_file() else None


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The settings of the config file (`config_path()` by default) as {name: value},
    folders resolved against the file's folder; {} when there is no file.

    Raises:
        SettingsError: the file cannot be read or is not valid TOML, or a value under
            a known name is a table; the message names the file (and line).
    """
    path = path if path is not None else config_path()
    if path is None:
        return {}
    # Settings.load runs for every question that passes no settings: the file is
    # parsed again only when it changed.
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    cached = _PARSED.get(key) if key is not None else None
    if cached is not None:
        return dict(cached)
    values = _parse(path)
    if key is not None:
        _PARSED.clear()  # one file in force at a time; keep no stale versions
        _PARSED[key] = values
    return dict(values)


_PARSED: dict[tuple[str, int, int], dict[str, Any]] = {}


def _parse(path: Path) -> dict[str, Any]:
    try:
        # utf-8-sig: a file saved by an editor that writes a byte-order mark is still read.
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise SettingsError(f"cannot read the config file {path}: {error.strerror or error}") from error
    except UnicodeDecodeError:
        raise SettingsError(f"config file {path} is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"config file {path} is not valid TOML ({error}); see docs/settings.md") from None
    except RecursionError:
        raise SettingsError(
            f"config file {path} nests too deeply to be a settings file; see docs/settings.md"
        ) from None
    table = data.get("qa", {})
    if not isinstance(table, dict):
        raise SettingsError(f"config file {path}: qa must be a table ([qa]) of settings, got {table!r}")
    values = {key: value for key, value in data.items() if key != "qa"}
    both = sorted(set(values) & set(table))
    if both:
        raise SettingsError(f"config file {path} sets {', '.join(both)} twice, at the top and under [qa]; keep one")
    values.update(table)
    for key, value in values.items():
        if isinstance(value, (dict, list)):
            raise SettingsError(f"config file {path}: setting {key} must be a single value, got {type(value).__name__}")
        # A relative folder is the file's neighbour; "~/..." and absolute ones stay as
        # written, and a value that is not text is left for Settings to refuse.
        if key in PATH_KEYS and isinstance(value, str) and value and not value.startswith("~"):
            folder = Path(value)
            values[key] = folder if folder.is_absolute() else path.resolve().parent / folder
    values["__file__"] = path  # where the values came from, for error messages
    return values
