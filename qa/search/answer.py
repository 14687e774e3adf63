"""Answer a question: the cited passages, or a short "nothing relevant found" in the
question's language, and the Markdown the chat and CLI show.
"""

from __future__ import annotations

import re
from dataclasses import replace

from qa.limits import Mode, validate_k, validate_mode, validate_question
from qa.schema import Answer, Filter, Hit
from qa.search.calibration import calibration_for
from qa.search.judge import MARGIN_DEPTH, judge
from qa.search.query import question_language
from qa.search.retriever import Retriever, get_retriever
from qa.settings import Settings

# Shown instead of passages when the judge finds nothing (see qa/search/judge.py).
_NOT_FOUND = {
    "zh-Hans": "没有在文章中找到与这个问题相关的内容。",
    "zh-Hant": "沒有在文章中找到與這個問題相關的內容。",
    "en": "No passage in the articles answers this question.",
}
# Shown above the passages when the evidence is mixed: they are the best there is,
# but may not answer the question.
_UNSURE = {
    "zh-Hans": "这些段落可能不回答这个问题。",
    "zh-Hant": "這些段落可能不回答這個問題。",
    "en": "These passages may not answer the question.",
}

__all__ = ["answer", "question_language", "to_markdown", "highlighted", "escape_markdown"]


def answer(
    question: str,
    k: int | None = None,
    *,
    mode: Mode = "hybrid",
    show_unrelated: bool = False,
    settings: Settings | None = None,
    retriever: Retriever | None = None,
    where: Filter | None = None,
    topic: str = "",
) -> Answer:
    """Retrieve passages for `question` and judge whether they answer it.

    Args:
        question: simplified or traditional Chinese, or English.
        k: passages to return (1-50); defaults to the `top_k` setting.
        mode: "hybrid" (default), "dense" or "lexical".
        show_unrelated: return all k best passages, labelled, whatever the verdict
            (by default a found answer stops at the passages that answer, and
            "not_found" returns none).
        where: only these articles (`qa.schema.Filter`: source files, a date range).
        topic: for a rewritten follow-up, the new topic it swapped in (那杭州呢？ →
            杭州); the answer must come from an article that names it.

    Returns:
        Answer with `.verdict` ("found", "unsure" or "not_found"), `.found`,
        `.passages` (for "found" the passages that answer, up to the first that does
        not; for "unsure" all k; for "not_found" only with `show_unrelated`), each
        with `.evidence` ("answers" or "related"), `.message`, `.markdown`, and
        `.stale` (what changed in the corpus since the build; "" when nothing did).

    Example:
        >>> result = answer("知识城与新加坡签署了多少份合作备忘录？")  # doctest: +SKIP
        >>> result.verdict, result.passages[0].highlight_text  # doctest: +SKIP
    """
    settings = settings or (retriever.settings if retriever else Settings.load())
    # A bad question or k is the user's to fix, whatever state the index is in.
    validate_question(question, settings.max_question_chars)
    validate_mode(mode)
    k = validate_k(k if k is not None else settings.top_k)
    retriever = retriever or get_retriever(settings)
    query = retriever.analyse(question)
    stale = retriever.stale_note()
    # The verdict reads the best few results whatever k is (how far the best stands out).
    ranked = retriever.rank(query, max(k, MARGIN_DEPTH), mode, where)
    texts = [retriever.passage_text(r) for r in ranked]
    judgement = judge(query, ranked, retriever.index, texts, calibration_for(retriever), topic=topic)
    verdict = judgement.verdict
    shown = verdict != "not_found" or show_unrelated
    hits = retriever.to_hits(ranked[:k], mode) if shown else []
    hits = [
        replace(hit, evidence="answers" if answers else "related") for hit, answers in zip(hits, judgement.answering)
    ]
    if verdict == "found" and not show_unrelated:
        # The answer first: the passages whose own evidence answers, and none after the
        # first that does not (five passages had followed even a clear answer).
        cut = next((i for i, answers in enumerate(judgement.answering) if not answers), len(hits))
        hits = hits[: max(1, cut)]
    message = {"found": "", "unsure": _UNSURE, "not_found": _NOT_FOUND}[verdict]
    message = message[query.language] if message else ""
    return Answer(
        question=query.text,
        found=verdict == "found",
        verdict=verdict,
        passages=hits,
        message=message,
        markdown=to_markdown(verdict, hits, message, stale),
        stale=stale,
    )


def highlighted(hit: Hit, open_mark: str = "**", close_mark: str = "**") -> str:
    """The passage text with its answering sentence wrapped in marks."""
    if hit.highlight is None:
        return hit.text
    start, end = hit.highlight[0] - hit.start, hit.highlight[1] - hit.start
    return hit.text[:start] + open_mark + hit.text[start:end] + close_mark + hit.text[end:]


def to_markdown(verdict: str, hits: list[Hit], message: str, stale: str = "") -> str:
    """Markdown for the chat: a stale-index note if any, the verdict's line, numbered
    passages with the answering sentence in `<mark>`, a citation under each.

    Article text is escaped, so nothing in an article is taken as Markdown or HTML.
    """
    lines: list[str] = [f"⚠️ _{escape_markdown(stale)}_", ""] if stale else []
    if verdict != "found":
        lines.append(f"_{escape_markdown(message)}_")
        if hits:
            lines.append("")
            if verdict == "not_found":
                lines += ["Closest passages (not judged relevant):", ""]
    for number, hit in enumerate(hits, 1):
        lines.append(f"**[{number}]** {highlight_markup(hit)}")
        lines.append("")
        label = f" · {hit.evidence_label}" if hit.evidence_label else ""
        lines.append(f"> [{number}] {escape_markdown(hit.citation)}{label}")
        lines.append("")
    return "\n".join(lines).strip()


def highlight_markup(hit: Hit, open_tag: str = "<mark>", close_tag: str = "</mark>") -> str:
    """The passage as escaped Markdown with its answering sentence wrapped in `<mark>`.

    The mark is applied line by line, so a sentence running over a paragraph break
    never leaves an unclosed tag.
    """
    if hit.highlight is None:
        return escape_markdown(hit.text)
    start = max(0, hit.highlight[0] - hit.start)
    end = min(len(hit.text), hit.highlight[1] - hit.start)
    marked = "\n".join(
        f"{open_tag}{escape_markdown(line)}{close_tag}" if line.strip() else line
        for line in hit.text[start:end].split("\n")
    )
    return escape_markdown(hit.text[:start]) + marked + escape_markdown(hit.text[end:])


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#<>|~$&])")
_LINE_START_MARKER = re.compile(r"^(\s*)(\d*)([-+=.)])", re.MULTILINE)


def escape_markdown(text: str, code_spans: bool = False) -> str:
    """Text shown literally: no Markdown, HTML or list markup taken from the articles.

    With `code_spans`, `like this` stays a code span (error messages name commands so).
    """
    if code_spans:
        parts = re.split(r"(`[^`\n]+`)", text)
        return "".join(part if i % 2 else escape_markdown(part) for i, part in enumerate(parts))
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return _LINE_START_MARKER.sub(lambda m: m.group(1) + m.group(2) + "\\" + m.group(3), text)
