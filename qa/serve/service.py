"""Serving many users from one process, for the web chat and its JSON API.

What the page and the HTTP endpoints call, without gradio: the shared retriever
(read-only while serving, swapped in after a rebuild), questions embedded in
micro-batches, follow-ups resolved, a passage's article context, the index status,
rebuilds in the background, uploads, and per-client rate limits. The only state
shared between requests that is not read-only (the current retriever, the rebuild,
the rate limiter's counts) is guarded by a lock each.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from qa.search.answer import answer
from qa.atomic import replace_file
from qa.embed.batching import BatchingEncoder
from qa.ingest.corpus import ARTICLE_SUFFIXES
from qa.errors import QAError, QuestionError, SettingsError
from qa.search.followup import resolve_followup
from qa.index.read import load_index
from qa.search.retriever import Retriever, get_retriever
from qa.schema import Answer, Filter, Hit
from qa.settings import Settings

ERROR_MESSAGE = "出错了，请稍后再试。 Something went wrong answering this question; the server log has the details."
RATE_LIMITED = "提问太快了，请稍等几秒再问。 Too many questions at once; please wait a few seconds and ask again."
# What an upload may be: exactly the formats qa/ingest/corpus.py reads, so a new format
# there (HTML, PDF, DOCX) can be uploaded with no change here.
UPLOAD_SUFFIXES = ARTICLE_SUFFIXES
# How much lower than the questions a rebuild runs (nice levels, 0-19).
REBUILD_NICENESS = 10


# -- web settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class WebSettings:
    """How the web chat may be reached; each opening is an explicit setting.

    `auth` ("user:password", from QA_AUTH) asks for a login on the page and HTTP basic
    auth on the JSON API; `share` (QA_SHARE=1) asks gradio for a public link; the
    address itself is `Settings.host` (QA_HOST, default 127.0.0.1: this machine only).
    `rate_limit` (QA_RATE_LIMIT) is questions per minute per client, 0 for none.
    """

    auth: tuple[str, str] | None = None
    share: bool = False
    rate_limit: int = 30
    max_upload_bytes: int = 20 * 1024 * 1024

    @classmethod
    def load(cls, **overrides) -> "WebSettings":
        """From the environment (QA_AUTH, QA_SHARE, QA_RATE_LIMIT), then `overrides`.

        Raises:
            SettingsError: QA_AUTH without a colon, or QA_RATE_LIMIT not a whole number >= 0.
        """
        values: dict = {}
        auth = os.environ.get("QA_AUTH", "")
        if auth:
            user, colon, password = auth.partition(":")
            if not colon or not user or not password:
                raise SettingsError("setting QA_AUTH must be user:password, got a value without both parts")
            values["auth"] = (user, password)
        if os.environ.get("QA_SHARE", "").strip().lower() in {"1", "true", "yes", "on"}:
            values["share"] = True
        rate = os.environ.get("QA_RATE_LIMIT", "")
        if rate:
            try:
                values["rate_limit"] = int(rate)
            except ValueError:
                raise SettingsError(f"setting QA_RATE_LIMIT must be a whole number (questions per minute), got {rate!r}") from None
        values.update({name: value for name, value in overrides.items() if value is not None})
        settings = cls(**values)
        if settings.rate_limit < 0:
            raise SettingsError(f"setting QA_RATE_LIMIT must be 0 (off) or more, got {settings.rate_limit}")
        return settings


class RateLimiter:
    """At most `per_minute` questions per client in any 60 seconds (0: no limit)."""

    def __init__(self, per_minute: int, window_s: float = 60.0):
        self.per_minute = per_minute
        self.window_s = window_s
        self._asked: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            asked = self._asked.setdefault(client, deque())
            while asked and now - asked[0] >= self.window_s:
                asked.popleft()
            if len(asked) >= self.per_minute:
                return False
            asked.append(now)
            if len(self._asked) > 10_000:  # forget idle clients, so memory stays bounded
                idle = [key for key, times in self._asked.items() if not times or now - times[-1] >= self.window_s]
                for key in idle:
                    del self._asked[key]
            return True


# -- replies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One answered question as the chat and the JSON API return it.

    `question` is as typed; `resolved` the stand-alone question actually asked (equal
    to `question` unless it was a follow-up). `error` is a one-line message for the
    user instead of an answer (a mistake, the rate limit, an unexpected failure);
    `status` the HTTP status that goes with it.
    """

    question: str
    resolved: str = ""
    answer: Answer | None = None
    error: str = ""
    status: int = 200

    def to_dict(self) -> dict:
        """The JSON form (see README, "JSON API")."""
        result = self.answer
        return {
            "question": self.question,
            "resolved_question": self.resolved or self.question,
            "found": bool(result and result.found),
            "verdict": result.verdict if result else None,
            "message": result.message if result else "",
            "stale": result.stale if result else "",
            "error": self.error,
            "passages": [passage_dict(hit) for hit in (result.passages if result else [])],
        }


def passage_dict(hit: Hit) -> dict:
    """A passage as data: the Hit's fields, plus the highlight inside `text` itself."""
    data = hit.to_dict()
    data["highlight_in_text"] = (
        [hit.highlight[0] - hit.start, hit.highlight[1] - hit.start] if hit.highlight else None
    )
    return data


# -- an article around a passage ------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    number: int  # 1-based, as in citations
    text: str
    in_passage: bool  # part of the passage the answer showed
    highlight: tuple[int, int] | None = None  # the answering sentence, offsets in `text`


@dataclass(frozen=True)
class ArticleView:
    """A passage's article: the passage's paragraphs and their neighbours."""

    title: str
    source: str
    date: str = ""
    publication: str = ""
    paragraphs: list[Paragraph] = field(default_factory=list)
    paragraph_count: int = 0
    note: str = ""  # why the passage cannot be shown, when it cannot


# Paragraphs shown before and after the passage's own.
NEIGHBOURS = 1


def article_view(articles: dict, passage: dict, neighbours: int = NEIGHBOURS) -> ArticleView:
    """The article holding `passage` (a `passage_dict`), from an index's articles.

    When the article changed or left the index since the answer, says so instead of
    showing the wrong text.
    """
    source = str(passage.get("source", ""))
    article = articles.get(source)
    title = str(passage.get("title", ""))
    if article is None:
        return ArticleView(title, source, note="这篇文章已不在索引中。 This article is no longer in the index; ask again.")
    start, end = int(passage["start"]), int(passage["end"])
    if article.text[start:end] != passage.get("text"):
        return ArticleView(article.title, source, article.date, article.publication,
                           note="文章在回答后已更改，请重新提问。 The article changed since this answer; ask again.")
    lines = article.text.split("\n")
    first, last = article.paragraph_at(start), article.paragraph_at(max(start, end - 1))
    highlight = passage.get("highlight")
    paragraphs = []
    offset = sum(len(line) + 1 for line in lines[: max(0, first - 1 - neighbours)])
    for number in range(max(1, first - neighbours), min(len(lines), last + neighbours) + 1):
        text = lines[number - 1]
        span = None
        if highlight:
            low, high = max(highlight[0], offset), min(highlight[1], offset + len(text))
            if low < high:
                span = (low - offset, high - offset)
        paragraphs.append(Paragraph(number, text, first <= number <= last, span))
        offset += len(text) + 1
    return ArticleView(article.title, source, article.date, article.publication, paragraphs, len(lines))


# -- the service ------------------------------------------------------------------------


class ChatService:
    """Answers for every user of one server, over one index and one model.

    Args:
        settings: corpus, index and model.
        web: addresses, auth and limits; defaults to `WebSettings.load()`.
        retriever: a fixed retriever (tests); then rebuilds are not picked up.
        encoder: the encoder to batch and to build with (tests pass a fake); defaults
            to the model of `settings`, loaded on first use.
    """

    def __init__(self, settings: Settings, web: WebSettings | None = None, *, retriever=None, encoder=None):
        self.settings = settings
        self.web = web or WebSettings.load()
        self.limiter = RateLimiter(self.web.rate_limit)
        self._fixed = retriever
        self._encoder = encoder
        self._batching: BatchingEncoder | None = None
        self._swap = threading.Lock()  # the batching encoder is made once
        self._build = threading.Lock()
        self._rebuild: dict = {"running": False, "log": [], "result": "", "error": "", "started": None}

    # -- the retriever, swapped after a rebuild --------------------------------------

    @property
    def batching(self) -> BatchingEncoder:
        with self._swap:
            if self._batching is None:
                self._batching = BatchingEncoder(self._model())
            return self._batching

    def _model(self):
        if self._encoder is None:
            from qa.embed.factory import load_encoder

            self._encoder = load_encoder(self.settings)
        return self._encoder

    def retriever(self) -> Retriever:
        """The retriever over the index on disk now (`qa.search.retriever.get_retriever`, with
        this service's micro-batching encoder); a question that started on the old one
        finishes on it, so a swap fails nobody."""
        if self._fixed is not None:
            return self._fixed
        # A missing or damaged index is said before the model is loaded (load_index is a
        # stat of the manifest once the index is cached).
        load_index(self.settings)
        return get_retriever(self.settings, self.batching)

    # -- questions ---------------------------------------------------------------------

    def ask(
        self,
        question,
        *,
        k: int | None = None,
        mode: str = "hybrid",
        where: Filter | None = None,
        history: list[str] | None = None,
        client: str = "",
    ) -> Reply:
        """Answer `question`, resolved against the last of `history` (earlier stand-alone
        questions, oldest first) when it is a follow-up. Never raises: a problem is a
        Reply with a friendly `error`."""
        typed = question if isinstance(question, str) else ""
        if not isinstance(question, str) or not question.strip():
            return Reply(typed, error="请输入一个问题。 Please type a question about the articles.", status=400)
        if client and not self.limiter.allow(client):
            return Reply(typed, error=RATE_LIMITED, status=429)
        try:
            previous = next((q for q in reversed(history or []) if isinstance(q, str) and q.strip()), "")
            resolved = resolve_followup(question, previous) if previous else question.strip()
            result = answer(resolved, k, mode=mode, settings=self.settings, retriever=self.retriever(), where=where)
        except (QuestionError, SettingsError) as error:
            return Reply(typed, error=str(error), status=400)
        except QAError as error:
            return Reply(typed, error=str(error), status=503)
        except Exception:  # never a traceback to the user; the details go to the server log
            traceback.print_exc(file=sys.stderr)
            return Reply(typed, error=ERROR_MESSAGE, status=500)
        return Reply(typed, resolved if resolved != question.strip() else "", result)

    def article(self, passage: dict) -> ArticleView:
        """The article around a passage of an earlier answer."""
        try:
            return article_view(self.retriever().index.articles, passage)
        except QAError as error:
            return ArticleView(str(passage.get("title", "")), str(passage.get("source", "")), note=str(error))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return ArticleView("", "", note=ERROR_MESSAGE)

    def articles(self) -> list[tuple[str, str]]:
        """(title, source) of every indexed article, for the filter; [] without an index."""
        try:
            index = self.retriever().index
        except QAError:
            return []
        return sorted(((a.title, a.source) for a in index.articles.values()), key=lambda pair: pair[1])

    # -- the index -----------------------------------------------------------------------

    def status(self) -> dict:
        """`qa.index.read.index_status` plus the rebuild in progress (or the last one's result)."""
        from qa.index.freshness import index_status

        try:
            status = index_status(self.settings)
        except QAError as error:
            status = {"state": "unusable", "problem": str(error)}
        with self._build:
            status["rebuild"] = {**self._rebuild, "log": list(self._rebuild["log"][-5:])}
        if self._batching is not None and self._batching.batches:
            batching = self._batching
            status["batching"] = {"batches": batching.batches, "questions": batching.questions,
                                  "mean_batch": round(batching.questions / batching.batches, 2)}
        return status

    def start_rebuild(self, full: bool = False) -> bool:
        """Bring the index up to date in a background thread; False if one is running.

        The chat keeps answering from the old index until the build swaps the new one
        in (see qa/index/read.py); progress and the outcome are in `status()["rebuild"]`.
        """
        with self._build:
            if self._rebuild["running"]:
                return False
            self._rebuild = {"running": True, "log": [], "result": "", "error": "", "started": time.time()}
        threading.Thread(target=self._run_rebuild, args=(full,), name="qa-rebuild", daemon=True).start()
        return True

    def _run_rebuild(self, full: bool) -> None:
        from qa.index.build import build_index

        # Questions first: the build thread yields the CPU to them (Linux lets a thread
        # lower its own priority; torch runs in the calling thread with one thread, so
        # the embedding of passages is lowered too). Elsewhere it runs at normal priority.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REBUILD_NICENESS)
        except (AttributeError, OSError):
            pass

        def log(line: str) -> None:
            with self._build:
                self._rebuild["log"].append(str(line))

        result, error = "", ""
        try:
            result = str(build_index(self.settings, encoder=self._model(), log=log, full=full))
        except QAError as failure:
            error = str(failure)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            error = "重建失败。 The rebuild failed; the server log has the details. The previous index is still in use."
        with self._build:
            self._rebuild.update(running=False, result=result, error=error)

    def wait_for_rebuild(self, timeout_s: float = 600.0) -> dict:
        """Block until no rebuild runs (tests, the load script); the rebuild's record."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._build:
                if not self._rebuild["running"]:
                    return dict(self._rebuild)
            time.sleep(0.05)
        raise TimeoutError(f"the rebuild did not finish in {timeout_s:.0f} s")

    def add_article(self, name: str, data: bytes) -> str:
        """Save an uploaded article into the corpus folder and start an incremental
        rebuild; the message to show. Only a plain file name in a readable format is
        taken, and never more than `max_upload_bytes`.

        Raises:
            QuestionError: the upload is not something that can be added (the message says why).
        """
        filename = Path(str(name or "")).name.strip()
        if not filename or filename.startswith("."):
            raise QuestionError("the file has no usable name; rename it, e.g. article.txt")
        if not filename.lower().endswith(UPLOAD_SUFFIXES):
            raise QuestionError(f"{filename}: only {', '.join(UPLOAD_SUFFIXES)} files can be added")
        if len(data) > self.web.max_upload_bytes:
            raise QuestionError(f"{filename} is {len(data) // 1024} KiB; the limit is {self.web.max_upload_bytes // 1024} KiB")
        if not data.strip():
            raise QuestionError(f"{filename} is empty")
        corpus = Path(self.settings.corpus_dir)
        corpus.mkdir(parents=True, exist_ok=True)
        target = corpus / filename
        replaced = target.exists()
        replace_file(target, lambda tmp: tmp.write_bytes(data))  # a build never sees half a file
        started = self.start_rebuild()
        verb = "replaced" if replaced else "added"
        then = "indexing it now" if started else "a rebuild is running; press Rebuild when it ends to index it"
        return f"{filename} {verb} in {corpus}; {then}."

    def warm_up(self) -> None:
        """Load the index, the model and the English dictionary, so the first user waits less."""
        for question in ("知识城", "Knowledge City"):
            reply = self.ask(question)
            if reply.status >= 500:
                print(f"warm-up question failed: {reply.error}", file=sys.stderr)
        # The web chat rebuilds (its Rebuild button, uploads), and the default encoder
        # loads its passage model only when a build first embeds. onnxruntime holds the
        # GIL while it loads a model, so loading it under load stalled every question
        # for ~1.5 s (load test: p99 1,575 ms during the first rebuild); now, before anyone asks.
        if self._fixed is None:
            self._model().encode_passages(["预热"])


def parse_filter(sources=None, date_from: str = "", date_to: str = "") -> Filter | None:
    """A Filter from form or JSON values, or None when nothing is filtered.

    Raises:
        SettingsError: a date that is not YYYY[-MM[-DD]], or a range that ends before it starts
            (checked by `Filter` itself).
    """
    date_from, date_to = (date_from or "").strip(), (date_to or "").strip()
    if isinstance(sources, str):
        sources = [sources]
    chosen = frozenset(str(s) for s in sources) if sources else None
    if chosen is None and not date_from and not date_to:
        return None
    return Filter(sources=chosen, date_from=date_from, date_to=date_to)
