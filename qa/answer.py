"""Answer a question: the cited passages, or a short "nothing relevant found" in the
question's language, and the Markdown the chat and CLI show.
"""

from __future__ import annotations

import re

from qa.highlight import term_coverage
from qa.lexical import query_terms
from qa.retrieve import Mode, Ranked, Retriever, get_retriever, validate_k, validate_question
from qa.schema import Answer, Hit
from qa.settings import Settings

# Relevance rule, calibrated on the dev questions (see README, "Nothing found").
# E5 cosines sit in a narrow band for any text pair, so the raw score alone does not
# separate answerable from unanswerable; the question's content terms found in the
# best passage do, for Chinese questions. English questions share no terms with
# Chinese passages, so for them only a clearly high dense score counts.
MIN_COVERAGE = 0.5  # share of the question's content terms in the top passage
MIN_DENSE_WITH_TERMS = 0.80  # dense score needed alongside that coverage
MIN_DENSE_ALONE = 0.86  # dense score that counts without term evidence

_NOT_FOUND = {
    "zh-Hans": "没有在文章中找到与这个问题相关的内容。",
    "zh-Hant": "沒有在文章中找到與這個問題相關的內容。",
    "en": "No passage in the articles answers this question.",
}


def question_language(question: str) -> str:
    """"zh-Hans", "zh-Hant" or "en", from the characters of the question."""
    han = [ch for ch in question if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"]
    if not han:
        return "en"
    from qa.normalize import to_simplified_chars

    simplified = to_simplified_chars("".join(han))
    changed = sum(1 for a, b in zip(han, simplified) if a != b)
    return "zh-Hant" if changed >= 1 and changed / len(han) >= 0.1 else "zh-Hans"


def is_relevant(question: str, best: Ranked, passage_text: str) -> bool:
    """Whether the best passage is evidence of an answer (see the constants above)."""
    dense = best.dense if best.dense is not None else 0.0
    coverage = term_coverage(query_terms(question), passage_text)
    if dense >= MIN_DENSE_ALONE:
        return True
    return coverage >= MIN_COVERAGE and dense >= MIN_DENSE_WITH_TERMS


def answer(
    question: str,
    k: int | None = None,
    *,
    mode: Mode = "hybrid",
    show_unrelated: bool = False,
    settings: Settings | None = None,
    retriever: Retriever | None = None,
) -> Answer:
    """Retrieve passages for `question` and decide whether they answer it.

    Args:
        question: simplified or traditional Chinese, or English.
        k: passages to return (1-50); defaults to the `top_k` setting.
        mode: "hybrid" (default), "dense" or "lexical".
        show_unrelated: return the best passages even when none is relevant.

    Returns:
        Answer with `.found`, `.passages` (empty when not found, unless
        `show_unrelated`), `.message` and `.markdown`.

    Example:
        >>> result = answer("知识城与新加坡签署了多少份合作备忘录？")  # doctest: +SKIP
        >>> result.found, result.passages[0].highlight_text  # doctest: +SKIP
    """
    settings = settings or (retriever.settings if retriever else Settings.load())
    question = validate_question(question, settings)
    k = validate_k(k if k is not None else settings.top_k)
    retriever = retriever or get_retriever(settings)
    # Relevance is judged on the dense score, so lexical mode computes it for the best passage.
    ranked = retriever.rank(question, k, mode)
    found = bool(ranked)
    if ranked:
        best = ranked[0]
        if best.dense is None:
            vector = retriever.encoder.encode_queries([question])[0]
            dense = float(retriever.index.vectors.all_scores(vector)[best.row])
            best = Ranked(best.row, best.score, dense, best.lexical)
        found = is_relevant(question, best, retriever.index.chunks[best.row].text)
    hits = retriever.to_hits(question, ranked) if (found or show_unrelated) else []
    language = question_language(question)
    message = "" if found else _NOT_FOUND[language]
    return Answer(
        question=question,
        found=found,
        passages=hits,
        message=message,
        markdown=to_markdown(question, found, hits, message),
    )


def highlighted(hit: Hit, open_mark: str = "**", close_mark: str = "**") -> str:
    """The passage text with its answering sentence wrapped in marks."""
    if hit.highlight is None:
        return hit.text
    start, end = hit.highlight[0] - hit.start, hit.highlight[1] - hit.start
    return hit.text[:start] + open_mark + hit.text[start:end] + close_mark + hit.text[end:]


def to_markdown(question: str, found: bool, hits: list[Hit], message: str) -> str:
    """Markdown for the chat: numbered passages, the answering sentence in `<mark>`, a citation under each.

    Article text is escaped, so nothing in an article is taken as Markdown or HTML.
    """
    lines: list[str] = []
    if not found:
        lines.append(f"_{escape_markdown(message)}_")
        if hits:
            lines += ["", "Closest passages (not judged relevant):", ""]
    for number, hit in enumerate(hits, 1):
        lines.append(f"**[{number}]** {highlight_markup(hit)}")
        lines.append("")
        lines.append(f"> [{number}] {escape_markdown(hit.citation)} · score {hit.score:.2f}")
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
