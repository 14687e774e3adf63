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
from pathlib import Path

from qa.atomic import create_file
from qa.embed.batching import BatchingEncoder
from qa.errors import QAError, QuestionError, SettingsError
from qa.index.read import load_index
from qa.ingest.corpus import ARTICLE_SUFFIXES, may_be_article
from qa.limits import validate_question
from qa.schema import Filter
from qa.search.answer import answer
from qa.search.followup import rewrite_followup
from qa.search.retriever import Retriever, get_retriever
from qa.serve.limits import RateLimiter, WebSettings
from qa.serve.views import ArticleView, Reply, article_view
from qa.settings import Settings

ERROR_MESSAGE = "出错了，请稍后再试。 Something went wrong answering this question; the server log has the details."
RATE_LIMITED = "提问太快了，请稍等几秒再问。 Too many questions at once; please wait a few seconds and ask again."
# What an upload may be: exactly the formats qa/ingest/corpus.py reads, so a new format
# there (HTML, PDF, DOCX) can be uploaded with no change here.
UPLOAD_SUFFIXES = ARTICLE_SUFFIXES
# How much lower than the questions a rebuild runs (nice levels, 0-19).
REBUILD_NICENESS = 10


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
        # Not typed at all: the chat's friendly prompt. Anything else that is not a
        # question (a number, a list) gets validate_question's message below.
        if question is None or (isinstance(question, str) and not question.strip()):
            return Reply(typed, error="请输入一个问题。 Please type a question about the articles.", status=400)
        if client and not self.limiter.allow(client):
            return Reply(typed, error=RATE_LIMITED, status=429)
        try:
            previous = next((q for q in reversed(history or []) if isinstance(q, str) and q.strip()), "")
            # A follow-up is judged as the question it became, and its new topic (那杭州呢？)
            # must be named by the article that answers it.
            # The question as typed is checked first (text, its own length): what the user can fix.
            asked = validate_question(question, self.settings.max_question_chars)
            resolved, topic = rewrite_followup(question, previous) if previous else (asked, "")
            if len(resolved) > self.settings.max_question_chars:
                # A short follow-up to a long question: answered as typed, not refused for
                # a length the user never typed.
                resolved, topic = asked, ""
            result = answer(
                resolved, k, mode=mode, settings=self.settings, retriever=self.retriever(), where=where, topic=topic
            )
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
            status["batching"] = {
                "batches": batching.batches,
                "questions": batching.questions,
                "mean_batch": round(batching.questions / batching.batches, 2),
            }
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
        from qa.search.calibration import calibrate_index

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
        if not error:
            # The verdict's calibration of the new index (qa/search/calibration.py), after
            # the swap: questions are answered meanwhile, the first ones waiting for it.
            try:
                calibrate_index(self.settings, encoder=self._model())
            except Exception:
                traceback.print_exc(file=sys.stderr)

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
        try:
            filename.encode("utf-8")
        except UnicodeEncodeError:
            raise QuestionError("the file name is not valid UTF-8; rename it, e.g. article.txt") from None
        if not filename.lower().endswith(UPLOAD_SUFFIXES):
            raise QuestionError(f"{filename}: only {', '.join(UPLOAD_SUFFIXES)} files can be added")
        if not may_be_article(filename):
            # Saved, it would be left out of every build without a word.
            raise QuestionError(
                f"{filename}: README.md and ~$ lock files are never indexed; rename it, e.g. article.txt"
            )
        if len(data) > self.web.max_upload_bytes:
            raise QuestionError(
                f"{filename} is {len(data) // 1024} KiB; the limit is {self.web.max_upload_bytes // 1024} KiB"
            )
        if not data.strip():
            raise QuestionError(f"{filename} is empty")
        corpus = Path(self.settings.corpus_dir)
        corpus.mkdir(parents=True, exist_ok=True)
        target = corpus / filename
        # Never over an article already there: an upload named like one had replaced it
        # without a word. Whole or not at all, so a build never sees half a file.
        if not create_file(target, lambda tmp: tmp.write_bytes(data)):
            same = target.is_file() and not target.is_symlink() and target.read_bytes() == data
            if same:
                raise QuestionError(f"{filename} is already in the corpus, unchanged; nothing to add")
            stem, suffix = Path(filename).stem, Path(filename).suffix
            raise QuestionError(
                f"an article named {filename} is already in the corpus and is kept; rename the file "
                f"(e.g. {stem}-2{suffix}) to add it beside that one, or remove the old one from {corpus} first"
            )
        started = self.start_rebuild()
        then = "indexing it now" if started else "a rebuild is running; press Rebuild when it ends to index it"
        return f"{filename} added in {corpus}; {then}."

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
