"""The `qa` command: build, ask, status, eval and serve.

A user's mistake (no index, empty question, unreadable article) prints one line
saying what is wrong and what to do, and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import unicodedata
from pathlib import Path

from qa import __version__
from qa.config import CONFIG_FILE, CONFIG_VARIABLE
from qa.errors import QAError
from qa.limits import MAX_K, MODES
from qa.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(
        corpus_dir=args.corpus,
        index_dir=args.index,
        embed_model=args.model,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def cmd_build(args: argparse.Namespace) -> int:
    from qa.api import build_index

    if args.dry_run:
        from qa.index.build import estimate_build

        print(estimate_build(_settings(args), full=args.full))
        return 0
    summary = build_index(_settings(args), progress=not args.quiet, log=None if args.quiet else _log, full=args.full)
    print(summary)
    return 0


def for_terminal(text: str, keep: tuple[str, ...] = ()) -> str:
    """`text` safe to print on a terminal: control characters (an article's title or
    file name may hold ESC sequences that recolour, retitle or clear the terminal, or a
    newline that splits a citation) written as visible escapes, except the `keep`
    strings (our own highlight codes)."""
    if not any(unicodedata.category(char) == "Cc" for char in text):
        return text
    pieces = re.split(f"({'|'.join(map(re.escape, keep))})", text) if keep else [text]
    return "".join(
        piece
        if piece in keep
        else "".join(f"\\x{ord(char):02x}" if unicodedata.category(char) == "Cc" else char for char in piece)
        for piece in pieces
    )


def cmd_ask(args: argparse.Namespace) -> int:
    from qa.schema import Filter
    from qa.search.answer import answer, highlighted

    where = Filter(
        sources=frozenset(args.source) if args.source else None, date_from=args.since or "", date_to=args.until or ""
    )
    result = answer(
        args.question, args.k, mode=args.mode, show_unrelated=args.all, settings=_settings(args), where=where
    )
    if result.stale:
        _log(f"qa: note: {result.stale}")
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if not result.found:
        print(result.message)
    for number, hit in enumerate(result.passages, 1):
        bold, reset = ("\033[1;33m", "\033[0m") if sys.stdout.isatty() else ("【", "】")
        label = f"  ({hit.evidence_label})" if hit.evidence_label else ""
        print(f"[{number}] {for_terminal(hit.citation)}{label}")
        print(f"    {for_terminal(highlighted(hit, bold, reset), keep=(bold, reset, chr(10)))}")
        print()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from qa.index.freshness import index_status

    status = index_status(_settings(args))
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
    elif status["state"] in ("missing", "unusable"):
        print(f"index: {status['state']} - {for_terminal(status['problem'])}")
    else:
        print(
            f"index: {status['state']} - {status['articles']} articles, {status['passages']} passages, "
            f"model {status['model']} ({status['dimension']} dims), built {status['built_at']}"
        )
        store = status["store"]
        if store["kind"] == "milvus":
            collections = ", ".join(store["collections"].values())
            print(
                f"vectors and BM25 candidates: Milvus at {store['uri']}, collections {collections} (generation {store['generation']})"
            )
        if status["changes"]:
            print(
                f"corpus changed since the build: {', '.join(status['changes'])}; run `qa build` (until then, answers come from this index)"
            )
        if status["building"]:
            print("a build is running now; questions are answered from this index until it finishes")
        for item in status["skipped"]:
            print(f"skipped (not indexed): {for_terminal(item['reason'])}")
    return 0 if status["state"] == "ready" else 1


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.eval.evaluate import benchmark_settings, ensure_index, evaluate, load_questions
    from qa.search.retriever import Retriever

    settings = _settings(args)
    target = Path(args.target)
    if target.is_dir():
        # A benchmark folder: its own corpus, indexed once in the cache.
        settings, questions_path = benchmark_settings(target, settings)
        ensure_index(settings, log=None if args.json else _log)
    else:
        questions_path = target
    questions = load_questions(questions_path)
    retriever = Retriever.from_settings(settings)
    modes = MODES if args.mode == "all" else (args.mode,)
    reports = [evaluate(questions, retriever, mode) for mode in modes]
    if args.json:
        print(json.dumps([m.to_dict() for m, _ in reports], ensure_ascii=False, indent=2))
        return 0
    print(f"{len(questions)} questions from {questions_path}")
    for metrics, results in reports:
        print(metrics.line())
        if args.verbose:
            for r in results:
                mark = "-" if r.question.unanswerable else (r.first_answer_rank or "miss")
                print(
                    f"    {r.question.id}: first answer at {mark}, {r.verdict} ({r.probability:.2f})  {r.question.question}"
                )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.serve.web import serve

    serve(_settings(args), build_if_needed=True)
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Cited answers from a folder of Chinese news articles.")
    parser.add_argument("--version", action="version", version=f"qa {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"config file (default: ${CONFIG_VARIABLE} or ./{CONFIG_FILE}; see docs/settings.md)",
    )
    parser.add_argument("--corpus", help="corpus folder (default: $QA_CORPUS_DIR or corpus/)")
    parser.add_argument("--index", help="index folder (default: $QA_INDEX_DIR or index/)")
    parser.add_argument("--model", help="embedding model (default: $QA_EMBED_MODEL or the bundled offline model)")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="bring the index up to date with the corpus (only what changed)")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    build.add_argument(
        "--full", action="store_true", help="rebuild every article instead of only added and changed ones"
    )
    build.add_argument(
        "--dry-run", action="store_true", help="say how many texts a build would embed and how long it would take"
    )
    build.set_defaults(run=cmd_build)

    ask = commands.add_parser("ask", help="ask a question")
    ask.add_argument("question")
    ask.add_argument("-k", type=int, default=None, help=f"number of passages (1-{MAX_K}, default 5)")
    ask.add_argument("--mode", choices=MODES[::-1], default="hybrid")
    ask.add_argument("--all", action="store_true", help="show the closest passages even when none is relevant")
    ask.add_argument("--json", action="store_true", help="machine-readable output")
    ask.add_argument(
        "--source",
        action="append",
        metavar="FILE",
        help="only this article (repeatable; as `qa status --json` lists them)",
    )
    ask.add_argument("--since", metavar="YYYY-MM-DD", help="only articles dated on or after this day")
    ask.add_argument("--until", metavar="YYYY-MM-DD", help="only articles dated on or before this day")
    ask.set_defaults(run=cmd_ask)

    status = commands.add_parser("status", help="is the index built and up to date?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)

    evaluation = commands.add_parser(
        "eval",
        help="measure retrieval on a question file (JSON lines) or a benchmark folder (corpus/ + questions.jsonl)",
    )
    evaluation.add_argument("target", metavar="FILE_OR_FOLDER")
    evaluation.add_argument("--mode", choices=[*MODES[::-1], "all"], default="all")
    evaluation.add_argument("--json", action="store_true")
    evaluation.add_argument("-v", "--verbose", action="store_true", help="one line per question")
    evaluation.set_defaults(run=cmd_eval)

    serve = commands.add_parser("serve", help="start the web chat (builds the index first if needed)")
    serve.add_argument("--host", help="address to listen on (default: $QA_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $QA_PORT or 7860)")
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for number, argument in enumerate(argv, 1):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            # Bytes that were not UTF-8 on the command line ($'\xff'): argparse and print
            # would fail on them with a traceback.
            shown = argument.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            print(
                f"qa: error: argument {number} ({shown[:60]}) is not valid UTF-8 text; type it again in UTF-8",
                file=sys.stderr,
            )
            return 2
    args = make_parser().parse_args(argv)
    if args.config:
        # Through the environment, so the web chat's rebuilds and settings see it too.
        os.environ[CONFIG_VARIABLE] = args.config
    try:
        return args.run(args)
    except QAError as error:  # a user's mistake or a fixable state: one line, no traceback
        print(f"qa: error: {for_terminal(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qa: interrupted; the previous index (if any) is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
