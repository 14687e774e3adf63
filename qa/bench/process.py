"""Process measurements for the scale runs: peak RSS, garbage-collector pauses, CPU
seconds, an encoder wrapper that times its calls, folder sizes, and child processes
of `python -m qa.bench.scale` whose last output line is JSON.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from qa.eval.checkout import ROOT


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over from the parent through fork and exec, so a child started by a
    1.6 GiB parent would report at least 1.6 GiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# Times SIGCONT arrived: another process on this shared machine may pause ours
# (SIGSTOP) while it takes its own timings, and a paused stretch must not be counted
# as retrieval or build time. A timing that saw a SIGCONT is taken again.
_resumed = 0


def watch_pauses() -> None:
    def on_continue(signum, frame):  # noqa: ARG001
        global _resumed
        _resumed += 1

    signal.signal(signal.SIGCONT, on_continue)


def pauses() -> int:
    return _resumed


def cpu_seconds() -> float:
    """User plus system CPU time of this process (all threads); pauses do not count."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class TimedEncoder:
    """The real encoder, with the time spent embedding questions added up, so a
    question's retrieval time can be split into embedding and everything else (the
    part that grows with the corpus)."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.seconds = 0.0

    def encode_queries(self, texts):
        started = time.perf_counter()
        try:
            return self._encoder.encode_queries(texts)
        finally:
            self.seconds += time.perf_counter() - started

    def encode_passages(self, texts):
        return self._encoder.encode_passages(texts)

    def token_count(self, text: str) -> int:
        return self._encoder.token_count(text)

    def __getattr__(self, name: str):  # anything else the engine may read (device, ...)
        return getattr(self._encoder, name)


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20


def settings_for(corpus_dir: Path, index_dir: Path):
    from qa.settings import Settings

    return Settings.load(corpus_dir=corpus_dir, index_dir=index_dir)


def run_child(args: list[str], timeout: float | None) -> tuple[dict, float]:
    """Run this script in a fresh interpreter; its last stdout line is JSON. Returns it and the wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "qa.bench.scale", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall
