"""Lexical retrieval: Chinese-aware tokenisation and a BM25 index (bm25s) over passages.

This is the only module that imports `bm25s` and `jieba`, so the rest of the
package (and its tests) can be used without paying for their import.

Tokens are taken from the offset-preserving matching form (`qa.normalize.match_form`),
so traditional and simplified text, full- and half-width forms, and upper and lower
case all give the same tokens. Each run of Chinese characters gives both jieba
search-mode words and character bigrams: jieba supplies real word boundaries, and
the bigrams still match where jieba splits a name or a rare term differently in a
question than in the passage (jieba keeps 黄伟坚 whole in the article but cuts
"黄伟坚说了什么" as 黄伟|坚说).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from qa.errors import IndexCorruptError, StaleIndexError
from qa.normalize import CJK_CHAR_CLASS, match_form, strip_pinyin
from qa.schema import Filter
from qa.translate import english_question_terms

__all__ = ["LexicalIndex", "LexicalSearch", "TOKENIZER_VERSION", "bm25_text", "query_terms", "tokenize"]

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


def has_han(text: str) -> bool:
    """Whether `text` contains Chinese characters (else it is taken as English)."""
    return bool(re.search(f"[{CJK_CHAR_CLASS}]", text))


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


# ------------------------------------------------------------------------ the index


@runtime_checkable
class LexicalSearch(Protocol):
    """BM25's best passages from an engine that holds them itself (Milvus), in place of
    ranking `LexicalIndex.term_scores` over every passage here. The scores that fusion
    and the judge read still come from `LexicalIndex`, so both stores rank alike."""

    def search(
        self, text: str, n: int, allowed: np.ndarray | None = None, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the `n` passages that score best for the question text `text`
        (`Query.lexical_query`), best first, among the rows `allowed` or the articles
        `where` lets through; (rows, scores), scores higher is better."""


_META_NAME = "lexical.json"
# The files bm25s writes (no corpus: passages are stored elsewhere; the default
# Lucene method writes no non-occurrence array).
_BM25_FILES = (
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
    "vocab.index.json",
    "params.index.json",
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LexicalIndex:
    """BM25 over pre-tokenised passages; documents are addressed by their position."""

    def __init__(self, bm25, num_docs: int):
        # bm25 is None when no passage has a single token (bm25s cannot index an
        # empty vocabulary); every query then scores zero.
        self._bm25 = bm25
        self._num_docs = num_docs

    def __len__(self) -> int:
        return self._num_docs

    @classmethod
    def build(cls, texts: Sequence[str]) -> "LexicalIndex":
        """Tokenise `texts` and index them; document i is `texts[i]`."""
        return cls.from_tokens([tokenize(t) for t in texts])

    @classmethod
    def from_tokens(cls, corpus_tokens: Sequence[Sequence[str]]) -> "LexicalIndex":
        """Index passages already tokenised by `tokenize` (a build keeps each article's
        tokens, so an unchanged article is not segmented again); document i is row i."""
        import bm25s

        corpus_tokens = [list(tokens) for tokens in corpus_tokens]
        if not any(corpus_tokens):
            return cls(None, len(corpus_tokens))
        bm25 = bm25s.BM25()  # Lucene variant, k1=1.5, b=0.75 (the library defaults)
        bm25.index(corpus_tokens, show_progress=False)
        return cls(bm25, len(corpus_tokens))

    def _term_ids(self, terms: Sequence[str]) -> list[int]:
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        # Distinct terms only: a word jieba repeats (say 知识 as word and as bigram)
        # should not count twice in the question.
        return [vocab[t] for t in dict.fromkeys(terms) if t in vocab]

    def known_share(self, terms: Sequence[str]) -> float:
        """Share of `terms` (weighted by length) that occur anywhere in the indexed texts.

        Near 1 for a Chinese question about these articles, near 0 for an English
        one: it says how much a lexical ranking can be trusted for this question.
        """
        vocab = getattr(self._bm25, "vocab_dict", None) or {}
        total = sum(len(term) for term in terms)
        if not total:
            return 0.0
        return sum(len(term) for term in terms if term in vocab) / total

    def contains(self, word: str) -> bool:
        """Whether `word` occurs in the indexed texts: as a token, or (for Chinese words
        jieba cut differently) as a run of indexed character bigrams."""
        vocab = getattr(self._bm25, "vocab_dict", None) or {}
        form = match_form(word)
        if form in vocab:
            return True
        if form.isascii() or len(form) < 2:
            return False
        return all(form[i : i + 2] in vocab for i in range(len(form) - 1))

    def unknown_share(self, question: str) -> float:
        """Share of the question's content words that occur nowhere in the texts.

        A question whose topic words (预算, 天气, GDP; router, weather) the articles
        never use cannot be answered from them, however close its embedding comes to
        some passage. Chinese words count by length; an English word counts as known
        when one of its dictionary translations occurs (words the dictionary does
        not know, such as romanised names, count neither way).
        """
        if not has_han(question):
            return self.unknown_share_english(question)
        return self.unknown_share_of(content_words(question))

    def unknown_share_english(self, question: str) -> float:
        """`unknown_share` of an English question, through its dictionary translations."""
        verdicts = [
            any(self._contains_translation(c) for c in t.chinese)
            for t in english_question_terms(question)
            if t.chinese
        ]
        # No word the dictionary knows (names, a typo): nothing in it is known to the
        # articles either, which is what the judge must see.
        return verdicts.count(False) / len(verdicts) if verdicts else 1.0

    def unknown_share_of(self, words: Sequence[str]) -> float:
        """Share (by length) of Chinese content `words` that occur nowhere in the texts."""
        total = sum(len(word) for word in words)
        if not total:
            return 0.0
        return sum(len(word) for word in words if not self.contains(word)) / total

    def _contains_translation(self, candidate: str) -> bool:
        # Single characters are too ambiguous to count (城 "city", 市 "market").
        # Counting a compound by its parts (广告宣传 by 宣传) was tried and dropped:
        # 澳大利亚 "Australia" then matched 粤港澳大湾区.
        return (candidate.isdigit() or len(candidate) >= 2) and self.contains(candidate)

    def cross_language_query(self, question: str) -> str:
        """For an English question, the Chinese translations of its words that occur in
        the texts, as a query BM25 can score; "" when none do."""
        terms = []
        for translation in english_question_terms(question):
            terms += [c for c in translation.chinese if (len(c) >= 2 or c.isdigit()) and self.contains(c)]
        return " ".join(dict.fromkeys(terms))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for `query` (zeros where nothing matches)."""
        return self.term_scores(query_terms(query))

    def term_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for already-tokenised `terms` (see `query_terms`).

        bm25s keeps the scores as a sparse term-by-document matrix, so this is a sum
        over the question's few term columns in numpy, not a loop over documents.
        """
        ids = self._term_ids(terms)
        if not ids:
            return np.zeros(self._num_docs, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The best `k` documents with a positive score, best first, as (index, score)."""
        ids, scores = top_n(self.scores(query), k)
        return [(int(i), float(s)) for i, s in zip(ids, scores)]

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write the index into `directory` (created if needed; meant for this index alone)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta_path = directory / _META_NAME
        # Removed first and written last: a save that dies half-way leaves no
        # metadata, so the half-written folder is reported instead of half-read.
        meta_path.unlink(missing_ok=True)
        files: dict[str, str] = {}
        if self._bm25 is not None:
            self._bm25.save(str(directory), show_progress=False)
            files = {name: _sha256(directory / name) for name in _BM25_FILES}
        meta = {
            "tokenizer_version": TOKENIZER_VERSION,
            "num_docs": self._num_docs,
            "sha256": files,  # so a damaged file is caught at load, not mid-question
        }
        meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Read an index written by `save`; raise IndexCorruptError if it is unusable."""
        import bm25s

        directory = Path(directory)

        def corrupt(why: str) -> IndexCorruptError:
            return IndexCorruptError(
                f"lexical index in {directory} is unusable ({why}); run `qa build` to rebuild it"
            )

        try:
            meta = json.loads((directory / _META_NAME).read_text(encoding="utf-8"))
            num_docs = int(meta["num_docs"])
            version = int(meta["tokenizer_version"])
            checksums = dict(meta["sha256"])
        except FileNotFoundError:
            raise corrupt(f"{_META_NAME} is missing") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise corrupt(f"{_META_NAME} cannot be read: {exc}") from None
        if version != TOKENIZER_VERSION:
            raise StaleIndexError(
                f"lexical index in {directory} was built with tokenizer version {version}, "
                f"this program uses {TOKENIZER_VERSION}; run `qa build` to rebuild it"
            )
        if num_docs < 0:
            raise corrupt(f"{_META_NAME} gives a negative document count")
        if not checksums:
            return cls(None, num_docs)  # saved from a corpus without a single token
        for name in _BM25_FILES:
            path = directory / name
            if not path.is_file():
                raise corrupt(f"{name} is missing")
            try:
                ok = _sha256(path) == checksums.get(name)
            except OSError as exc:
                raise corrupt(f"{name} cannot be read: {exc}") from None
            if not ok:
                raise corrupt(f"{name} does not match the checksum written at build time")
        try:
            # Memory-mapped: the score matrix (about 8 bytes per distinct term of each
            # passage: hundreds of MB at a million passages) stays in the page cache,
            # shared by every process serving this index and not copied into each. A
            # question reads only its terms' columns. A rebuild swaps in a new folder,
            # so a mapped file is never rewritten under a reader.
            bm25 = bm25s.BM25.load(str(directory), mmap=True, show_progress=False, verbosity=0)
            _check_consistent(bm25, num_docs)
        except IndexCorruptError:
            raise
        except Exception as exc:  # numpy/json/bm25s raise many kinds on bad files
            raise corrupt(f"{type(exc).__name__}: {exc}") from None
        return cls(bm25, num_docs)


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` best positive scores, best first (ties in document order), as (ids, scores).

    argpartition first: selecting n of N costs O(N), a full sort O(N log N).
    """
    positive = np.flatnonzero(scores > 0)
    if n <= 0 or positive.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if positive.size > n:
        positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
        positive.sort()  # document order, so the stable sort below breaks ties by it
    order = positive[np.argsort(-scores[positive], kind="stable")]
    return order, scores[order]


def _check_consistent(bm25, num_docs: int) -> None:
    """Cheap structural checks so a damaged file fails at load, not mid-question."""
    scores = bm25.scores
    data, indices, indptr = scores["data"], scores["indices"], scores["indptr"]
    vocab = bm25.vocab_dict
    if scores.get("num_docs") != num_docs:
        raise ValueError(f"index holds {scores.get('num_docs')} documents, expected {num_docs}")
    if not isinstance(vocab, dict):
        raise ValueError("vocabulary is not a mapping")
    # bm25s adds an empty token "" to the vocabulary without a matrix column; every
    # real token must have a column, or a question using it would index past the end.
    term_ids = [v for k, v in vocab.items() if k]
    if term_ids and (max(term_ids) >= len(indptr) - 1 or min(term_ids) < 0):
        raise ValueError("vocabulary and score matrix disagree in size")
    if len(data) != len(indices) or int(indptr[-1]) != len(data) or int(indptr[0]) != 0:
        raise ValueError("score matrix arrays disagree in size")
    if len(indices) and (int(indices.max()) >= num_docs or int(indices.min()) < 0):
        raise ValueError("score matrix points at documents that do not exist")
    if np.any(np.diff(indptr) < 0) or not np.all(np.isfinite(data)):
        raise ValueError("score matrix is malformed")

