"""Answer a question: the cited passages, or a short "nothing relevant found" in the
question's language, and the Markdown the chat and CLI show.
"""

from __future__ import annotations

import re

from qa.retrieve import Mode, Ranked, Retriever, get_retriever, validate_k, validate_question
from qa.schema import Answer, Hit
from qa.settings import Settings

# Relevance rule, calibrated on the dev questions and checked on eval/extra_questions.jsonl
# and on made-up off-topic questions (see README, "Nothing relevant found"). E5 cosines
# sit in a narrow band for any pair of texts, so a score alone does not separate
# answerable questions from the rest. What does is whether the articles use the words
# the question is about at all: an unanswerable question names a topic the articles
# never mention (预算, 天气, GDP; router, bitcoin, pasta). English words are looked up
# through their dictionary translations, which are looser, hence a looser threshold.
MAX_UNKNOWN_SHARE_CHINESE = 0.33  # answerable: at most 0.25; unanswerable: at least 0.42
MAX_UNKNOWN_SHARE_ENGLISH = 0.45  # answerable: at most 0.40; unanswerable: at least 0.50
# Floors that only catch text unlike anything in the articles.
MIN_DENSE_CHINESE = 0.80  # answerable Chinese questions score 0.88 or more
MIN_DENSE_ENGLISH = 0.74  # answerable English questions score 0.757 or more

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


def is_relevant(question: str, best: Ranked, unknown_share: float) -> bool:
    """Whether the best passage is evidence of an answer (see the constants above)."""
    dense = best.dense
    if question_language(question) == "en":
        return dense >= MIN_DENSE_ENGLISH and unknown_share <= MAX_UNKNOWN_SHARE_ENGLISH
    return dense >= MIN_DENSE_CHINESE and unknown_share <= MAX_UNKNOWN_SHARE_CHINESE


def judge(question: str, ranked: list[Ranked], retriever: Retriever) -> bool:
    """Whether a ranking for `question` answers it: its best passage is relevant."""
    return bool(ranked) and is_relevant(question, ranked[0], retriever.index.lexical.unknown_share(question))


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
    ranked = retriever.rank(question, k, mode)
    found = judge(question, ranked, retriever)
    hits = retriever.to_hits(ranked, mode) if (found or show_unrelated) else []
    language = question_language(question)
    message = "" if found else _NOT_FOUND[language]
    return Answer(
        question=question,
        found=found,
        passages=hits,
        message=message,
        markdown=to_markdown(found, hits, message),
    )


def highlighted(hit: Hit, open_mark: str = "**", close_mark: str = "**") -> str:
    """The passage text with its answering sentence wrapped in marks."""
    if hit.highlight is None:
        return hit.text
    start, end = hit.highlight[0] - hit.start, hit.highlight[1] - hit.start
    return hit.text[:start] + open_mark + hit.text[start:end] + close_mark + hit.text[end:]


def to_markdown(found: bool, hits: list[Hit], message: str) -> str:
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
