"""Chinese-aware tokens for BM25: jieba words and character bigrams, in matching form.

This is the only module that imports `jieba`. Tokens are taken from the
offset-preserving matching form (`qa.text.normalize.match_form`), so traditional
and simplified text, full- and half-width forms, and upper and lower case all give
the same tokens. Each run of Chinese characters gives both jieba search-mode words
and character bigrams: jieba supplies real word boundaries, and the bigrams still
match where jieba splits a name or a rare term differently in a question than in
the passage (jieba keeps 黄伟坚 whole in the article but cuts "黄伟坚说了什么" as
黄伟|坚说).
"""

from __future__ import annotations

import logging
import re
import threading

from qa.text.normalize import match_form, strip_pinyin
from qa.text.script import CJK_CHAR_CLASS

__all__ = ["STOPWORDS", "TOKENIZER_VERSION", "bm25_text", "content_words", "query_terms", "tokenize"]

# Bump when tokenisation changes: an index saved with other tokens cannot be queried
# with the new ones, and `LexicalIndex.load` refuses it instead of scoring garbage.
TOKENIZER_VERSION = 1

# Function words and question words. They are dropped as tokens, and they also cut
# the character run before bigrams are formed, so "城的" or "有多" never become terms.
# Kept short on purpose: over-eager stopwords would remove words that answer questions.
_ZH_STOPWORDS = frozenset(
    """
    的 地 得 了 着 过 是 在 和 与 及 以及 或 或者 等 等等 并 而 且 也 都 又 还 就 才
    被 把 将 对 对于 从 向 于 为 为了 以 之 其 该 此 这 那 这个 那个 这些 那些 这样 那样
    个 吗 呢 啊 呀 么 嘛 哦 哪 哪些 哪个 哪里 哪儿 哪几 哪几个 哪一 哪一年 哪年 哪方面
    什么 啥 谁 多少 几 几个 怎么 怎么样 怎样 如何 为何 为什么 是否 是不是 有没有 有无
    请问 请 一下 有 有些 会 要 能 可以 应该 需要 吧 我 你 他 她 它 我们 你们 他们 她们 它们
    """.split()
)
_EN_STOPWORDS = frozenset(
    """
    a an the and or but if then than of to in on at by for with from into onto about as
    is are was were be been being am do does did done has have had having will would shall
    should can could may might must it its this that these those there here he she they we
    you i me my our your his her their them us what which who whom whose when where why
    how not no yes so too very just also any some all each more most many much such only
    own same other than s t
    """.split()
)
STOPWORDS = _ZH_STOPWORDS | _EN_STOPWORDS
# Characters that only ask: a jieba word or bigram holding one (哪些地方, 进哪, 什么样)
# is the question's shape, not its content, so it is dropped like a stopword.
_QUESTION_CHARS = frozenset("哪啥吗呢么")


def _is_content(token: str) -> bool:
    return token not in STOPWORDS and not any(ch in _QUESTION_CHARS for ch in token)


# A letter or digit that is not an ideograph (Latin, digits, accented letters...).
_ALNUM = rf"[^\W_{CJK_CHAR_CLASS}]"
# Whitespace is dropped unless it separates two such letters/digits: the source
# text is hard-wrapped and letter-spaced ("如 何 抢 抓", "高质\n\n量") and a space
# inside a Chinese phrase must not break its bigrams; "gpu cpu" stays two words.
_JOIN_SPACE_RE = re.compile(rf"(?<!{_ALNUM})\s+|\s+(?!{_ALNUM})")
# A run of ideographs, or an ASCII word/number (decimals kept whole, "37%" kept).
_SEGMENT_RE = re.compile(
    rf"(?P<cjk>[{CJK_CHAR_CLASS}]+)"
    rf"|(?P<num>[0-9]+(?:\.[0-9]+)*%?)(?![a-z0-9])"
    # Any other run of letters/digits (Latin, "5g", "été"); "_" and ideographs excluded.
    rf"|(?P<word>{_ALNUM}+)"
)
_CJK_RE = re.compile(f"[{CJK_CHAR_CLASS}]")

_jieba = None
_jieba_lock = threading.Lock()


def _get_jieba():
    """Import and initialise jieba once (thread-safe); quiet its start-up chatter."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def _cjk_tokens(run: str) -> list[str]:
    """Tokens for one run of ideographs: jieba search-mode words plus bigrams."""
    jieba = _get_jieba()
    freq = jieba.dt.FREQ  # jieba's dictionary (word -> frequency)
    tokens: list[str] = []
    # Pieces of the run between stopwords; bigrams are formed within a piece only.
    # Stopwords are found as jieba words, so a stopword character inside a real
    # word (的 in 目的) does not cut it.
    pieces: list[str] = []
    piece: list[str] = []
    # One precise-mode pass, expanded to search mode the way jieba.cut_for_search
    # does (dictionary 2- and 3-grams inside longer words): segmenting twice
    # doubled the build time.
    for word in jieba.cut(run, HMM=True):
        if not _is_content(word):
            if piece:
                pieces.append("".join(piece))
                piece = []
            continue
        piece.append(word)
        for size in (2, 3):
            if len(word) > size:
                grams = (word[i : i + size] for i in range(len(word) - size + 1))
                tokens.extend(g for g in grams if freq.get(g) and _is_content(g))
        tokens.append(word)
    if piece:
        pieces.append("".join(piece))
    for p in pieces:
        if len(p) == 1:
            continue  # jieba already gave the single character as a word
        bigrams = (p[i : i + 2] for i in range(len(p) - 1))
        tokens.extend(b for b in bigrams if _is_content(b))
    return tokens


def tokenize(text: str) -> list[str]:
    """Chinese-aware BM25 tokens of `text` (documents and questions alike).

    - Chinese: jieba search-mode words and character bigrams (see module docstring).
    - Numbers stay whole, decimals included ("264.7", "37%" also gives "37"), and a
      number followed by a character also gives number+character ("81份", "264.7万"),
      so "264.7万条" in a question matches the passage and "264.7" alone still does.
    - Latin words are lowercased whole ("rcep", "gpu"); English stopwords dropped.
    - Punctuation and whitespace never become tokens; stopwords are dropped.
    Traditional input gives the same tokens as its simplified form.
    """
    if not text:
        return []
    form = bm25_text(text)
    tokens: list[str] = []
    for m in _SEGMENT_RE.finditer(form):
        kind = m.lastgroup
        value = m.group()
        if kind == "cjk":
            tokens.extend(_cjk_tokens(value))
        elif kind == "num":
            tokens.append(value)
            if value.endswith("%"):
                tokens.append(value[:-1])
            else:
                nxt = form[m.end() : m.end() + 1]
                if nxt and _CJK_RE.match(nxt):
                    tokens.append(value + nxt)  # the number with its unit: "81份"
        elif value not in STOPWORDS:
            tokens.append(value)
    return tokens


def bm25_text(text: str) -> str:
    """The form of `text` that BM25 reads: the matching form (simplified, NFKC, lower
    case), converter pinyin dropped, and whitespace inside Chinese removed. `tokenize`
    segments it; a search engine with its own analyzer (Milvus) is given it as is."""
    return _JOIN_SPACE_RE.sub("", match_form(strip_pinyin(text)))


def query_terms(query: str) -> list[str]:
    """Distinct content tokens of a question, in first-seen order."""
    return list(dict.fromkeys(tokenize(query)))


# Adverbs and quantity words that phrase a question without naming its topic: a
# question may use them where the article does not ("大约" for "约").
_PHRASING_WORDS = frozenset(
    "已经 一共 总共 共计 大约 大概 约 目前 现在 曾经 首先 分别 一起 主要 具体 到底 究竟 "
    "一个 两个 几个 几家 几年 几项 几所 几次 几位 几点 多大 多长 多高 多久 哪年 哪一年".split()
)


def content_words(question: str) -> list[str]:
    """The words of a question that name what it is about (jieba words, matching form).

    Stopwords, question words and phrasing adverbs are left out, as are single
    Chinese characters, which are too ambiguous to say what a question is about.
    """
    jieba = _get_jieba()
    words = []
    for word in jieba.lcut(match_form(strip_pinyin(question))):
        word = word.strip()
        if not word or word in STOPWORDS or word in _PHRASING_WORDS:
            continue
        if not any(ch.isalnum() for ch in word):
            continue
        if len(word) < 2 and not word.isascii():
            continue
        if any(mark in word for mark in ("哪", "啥", "吗", "呢", "么")):
            continue
        words.append(word)
    return list(dict.fromkeys(words))


# jieba's part-of-speech tags for names: places, people, organisations, other proper nouns.
_NAME_TAGS = frozenset({"ns", "nr", "nrt", "nt", "nz"})


def names(question: str) -> list[str]:
    """The names a Chinese question mentions (places, people, organisations, as jieba's
    part-of-speech tagger reads them; matching form, two characters or more).

    A question names its event by them; an article that names none of them answers
    some other event.
    """
    from jieba import posseg  # the tagger loads its model on first use only

    _get_jieba()
    found = [
        pair.word
        for pair in posseg.cut(match_form(strip_pinyin(question)))
        if pair.flag in _NAME_TAGS and len(pair.word) >= 2
    ]
    return list(dict.fromkeys(found))
