"""Normalisation forms, Chinese tokenisation and the BM25 index (fast: no embedding model)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS

from qa.errors import IndexCorruptError, StaleIndexError
from qa.stores.bm25 import LexicalIndex
from qa.text.normalize import eval_form, match_form, strip_pinyin
from qa.text.script import to_simplified, to_simplified_aligned, to_simplified_chars
from qa.text.tokens import query_terms, tokenize


# The seed articles: 000 is simplified and hard-wrapped, 002 traditional with pinyin.
def _seed(prefix: str) -> str:
    for path in sorted(SEEDS.glob(f"{prefix}_*.txt")):
        return path.read_text(encoding="utf-8")
    pytest.skip(f"seed article {prefix}_*.txt not found in {SEEDS}")


PINYIN_LEFT = re.compile(r"[\u4e00-\u9fff]\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+\)")


# ------------------------------------------------------------------- strip_pinyin


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("發(fā)展", "發展"),
        ("創(chuàng)新", "創新"),
        ("區(qū)", "區"),
        ("綠(lǜ)色", "綠色"),
        ("發（fā）展", "發展"),  # full-width parentheses too
        ("現(xiàn)在是場景創(chuàng)新", "現在是場景創新"),
    ],
)
def test_strip_pinyin_removes_annotations(raw, clean):
    assert strip_pinyin(raw) == clean


@pytest.mark.parametrize(
    "kept",
    [
        "区域全面经济伙伴关系协定（RCEP）机遇",
        "协定(RCEP)",
        "《中新广州知识城总体发展规划（2020-2035年）》",
        "推動了芯片(GPU)",
        "報告(2024)",
        "人工智能(AI)",  # uppercase is never pinyin
        "见图(a)",  # a lone toneless letter is a list marker
        "基因(gene)",  # two toneless "syllables" are more likely English
        "abc(fā)",  # not after an ideograph
    ],
)
def test_strip_pinyin_keeps_other_parentheses(kept):
    assert strip_pinyin(kept) == kept


def test_seed_002_has_no_pinyin_left_and_keeps_other_brackets():
    raw = _seed("002")
    assert PINYIN_LEFT.search(raw)  # the seed really has annotations
    clean = strip_pinyin(raw)
    assert not PINYIN_LEFT.search(clean)
    assert "創新" in clean and "發展" in clean


def test_seed_000_brackets_survive():
    raw = _seed("000")
    clean = strip_pinyin(raw)
    assert "（RCEP）" in clean
    assert "（2020-2035年）" in clean
    assert clean == raw  # nothing in it is pinyin


# ------------------------------------------------------------ simplified / match form


def test_t2s_char_by_char_agrees_with_phrase_conversion_on_seed_002():
    text = strip_pinyin(_seed("002"))
    assert to_simplified_chars(text) == to_simplified(text)
    assert len(to_simplified_aligned(text)) == len(text)


def test_phrase_conversion_is_used_where_length_allows():
    # 覆 alone stays 覆; only the phrase 批覆 becomes 批复.
    assert to_simplified_chars("批覆") == "批覆"
    assert to_simplified("國務院批覆") == "国务院批复"
    assert match_form("國務院批覆") == match_form("国务院批复") == "国务院批复"


@pytest.mark.parametrize("prefix", ["000", "002"])
def test_match_form_preserves_length_on_seeds(prefix):
    text = _seed(prefix)
    form = match_form(text)
    assert len(form) == len(text)
    i = text.find("知識城") if "知識城" in text else text.find("知识城")
    assert form[i : i + 3] == "知识城"  # offsets line up with the original


def test_match_form_folds_script_width_and_case():
    assert match_form("發展") == match_form("发展") == "发展"
    assert match_form("ＲＣＥＰ１２３") == "rcep123"
    for odd in ["㎡", "İstanbul", "ﬁ", "e\u0301", "𠮷"]:  # NFKC/lower would change length
        assert len(match_form(odd)) == len(odd)


# ---------------------------------------------------------------------- eval form


@pytest.mark.parametrize(
    ("raw", "form"),
    [
        ("發(fā)展新質生產力", "发展新质生产力"),  # pinyin out, traditional -> simplified
        ("同比增长 37%", "同比增长37%"),  # spaces out, % kept
        ("1.2萬份", "1.2万份"),  # . kept
        ("小鹏汽车、烯湾科技、深南电路", "小鹏汽车烯湾科技深南电路"),  # punctuation out
        ("约 60 人参\n\n加", "约60人参加"),  # line breaks out
        ("２０２０－２０３５年", "20202035年"),  # NFKC, then the hyphen (Pd) goes
        ("“万人助万企”", "万人助万企"),
        ("（RCEP）", "RCEP"),  # case is kept: the README does not fold it
    ],
)
def test_eval_form_follows_readme(raw, form):
    assert eval_form(raw) == form


def test_eval_form_matches_gold_in_seed_passages():
    passage = strip_pinyin(_seed("002"))
    assert eval_form("四大國企") in eval_form(passage)
    assert eval_form("新加坡四大国企") in eval_form(passage)


# -------------------------------------------------------------------- tokenisation


def test_names_are_tokens():
    assert "黄群慧" in tokenize("黄群慧从全球化格局改变论述")
    assert "巨文忠" in tokenize("巨文忠表示")
    assert "冯楚军" in tokenize("副會長馮楚軍主持會議")
    # jieba cuts this name as 黄伟|坚说 in a question; the bigrams still match.
    assert {"黄伟", "伟坚"} <= set(tokenize("黄伟坚说了什么"))


def test_numbers_with_units():
    tokens = tokenize("发送公益短信 264.7万条，开展主题活动142场")
    assert "264.7" in tokens  # decimal not split at the dot
    assert "264" not in tokens and "7" not in tokens
    assert set(tokenize("264.7万条")) <= set(tokens)
    assert {"81", "81份"} <= set(tokenize("簽署了81份合作備忘錄"))
    assert {"37%", "37"} <= set(tokenize("同比增长37%"))


def test_latin_words_lowercased_whole():
    assert "rcep" in tokenize("RCEP的签署")
    assert {"gpu", "cpu"} <= set(tokenize("推動了GPU和CPU相關的發展"))
    assert "pi" in tokenize("实施“揭榜挂帅”、PI制")
    assert tokenize("GPU") == tokenize("ｇｐｕ") == ["gpu"]


def test_punctuation_whitespace_and_stopwords_dropped():
    tokens = tokenize("知识城的总体规划是哪一年获得国务院批复的？！ 。，")
    for junk in ["的", "是", "哪一年", "？", "，", " ", ""]:
        assert junk not in tokens
    assert tokenize("What is the GPU?") == ["gpu"]
    assert tokenize("，。！？") == []
    assert tokenize("") == []


def test_letter_spaced_and_wrapped_text_joins():
    assert "区域" in tokenize("如 何 抢 抓 区 域")
    assert "质量" in tokenize("高质\n\n量立法")


def test_traditional_and_simplified_give_same_tokens():
    pairs = [
        ("知識城的總體規劃是哪一年獲得國務院批覆的？", "知识城的总体规划是哪一年获得国务院批复的？"),
        ("巨文忠認為創新體系首先要看什麼？", "巨文忠认为创新体系首先要看什么？"),
        ("簽署了81份合作備忘錄", "签署了81份合作备忘录"),
    ]
    for trad, simp in pairs:
        assert tokenize(trad) == tokenize(simp)


def test_query_terms_are_distinct_content_tokens():
    terms = query_terms("知识城和知识城的规划有哪些？")
    assert len(terms) == len(set(terms))
    assert "知识" in terms and "哪些" not in terms and "和" not in terms


# ---------------------------------------------------------------------- the index

# Real sentences cut from the seeds: 000 is simplified, 002 traditional.
SENTENCES = [
    "中国社会科学院经济研究所所长、国家制造强国建设战略咨询委员会委员黄群慧从全球化格局改变、"
    "全球经济治理规则的改变、新一轮科技革命、气候变化及碳减排等四个方面论述了全球制造业面临重构的原因。",
    "扎实推进安全宣传“五进”和“安全生产月”活动，共发放相关宣传资料1.2万份，投放户外公益广告675处，"
    "发送公益短信 264.7万条，开展主题活动142场。",
    "彭森认为，RCEP的签署不仅为中新广州知识城带来新机遇，也提出了新任务和新挑战。",
    "广东工业大学建筑与城市规划学院院长、广东省绿色城乡规划设计工程中心主任蔡云楠表示，中新广州知识城打造“湾区样板”。",
    "知識城與新加坡的合作日益緊密,簽署了81份合作備忘錄,新加坡四大國企已在知識城落戶。",
    "在芯片領域,推動了GPU和CPU相關的發(fā)展,同時在人形機器人領域也有所布局。",
    "中國經濟體制改革研究會副會長馮楚軍主持會議并作總結。",
]


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(SENTENCES)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("黄群慧从哪几个方面论述制造业重构？", 0),  # a name
        ("冯楚军做了什么？", 6),  # a name, simplified query, traditional passage
        ("公益短信发了264.7万条吗", 1),  # a number with its unit
        ("264.7", 1),
        ("签了多少份合作备忘录？81份", 4),
        ("RCEP带来了什么", 2),  # a Latin acronym
        ("芯片領域有GPU嗎", 5),
        ("廣東工業大學建築與城市規劃學院院長是誰？", 3),  # traditional query
    ],
)
def test_search_ranks_the_right_sentence_first(index, query, expected):
    hits = index.search(query, 3)
    assert hits, query
    assert hits[0][0] == expected
    assert hits[0][1] > 0
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_search_contract(index):
    assert len(index) == len(SENTENCES)
    assert index.search("今天天气怎么样？", 5) == []  # nothing in common
    assert index.search("What is the weather?", 5) == []
    assert index.search("", 5) == []
    hits = index.search("知识城", 100)  # k beyond the corpus is fine
    assert 0 < len(hits) < len(SENTENCES)
    assert all(score > 0 for _, score in hits)
    assert index.search("知识城", 0) == []
    scores = index.scores("知识城")
    assert scores.shape == (len(SENTENCES),)
    assert {i for i, _ in hits} == set(np.flatnonzero(scores > 0).tolist())


def test_save_load_round_trip(index, tmp_path):
    index.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert len(loaded) == len(index)
    for query in ["黄群慧", "264.7万条", "RCEP", "知識城", "冯楚军主持会议"]:
        np.testing.assert_array_equal(loaded.scores(query), index.scores(query))
        assert loaded.search(query, 5) == index.search(query, 5)


def test_empty_corpus_and_token_free_corpus(tmp_path):
    for texts in ([], ["，。", " "]):
        built = LexicalIndex.build(texts)
        built.save(tmp_path / "lex")
        loaded = LexicalIndex.load(tmp_path / "lex")
        assert len(loaded) == len(texts)
        assert loaded.search("知识城", 5) == []


def _saved(index: LexicalIndex, directory: Path) -> Path:
    index.save(directory)
    return directory


@pytest.mark.parametrize("name", ["data.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json", "lexical.json"])
def test_truncated_file_raises_corrupt(index, tmp_path, name):
    directory = _saved(index, tmp_path / "lex")
    path = directory / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IndexCorruptError, match="qa build") as info:
        LexicalIndex.load(directory)
    assert str(directory) in str(info.value)


def test_altered_or_missing_file_raises_corrupt(index, tmp_path):
    directory = _saved(index, tmp_path / "lex")
    data = bytearray((directory / "data.csc.index.npy").read_bytes())
    data[-1] ^= 0xFF  # same size, one byte different
    (directory / "data.csc.index.npy").write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="data.csc.index.npy"):
        LexicalIndex.load(directory)
    directory = _saved(index, tmp_path / "lex2")
    (directory / "vocab.index.json").unlink()
    with pytest.raises(IndexCorruptError, match="vocab.index.json"):
        LexicalIndex.load(directory)
    with pytest.raises(IndexCorruptError, match="qa build"):
        LexicalIndex.load(tmp_path / "never-built")


def test_other_tokenizer_version_is_stale(index, tmp_path):
    directory = _saved(index, tmp_path / "lex")
    meta = directory / "lexical.json"
    meta.write_text(meta.read_text().replace('"tokenizer_version": 1', '"tokenizer_version": 0'))
    with pytest.raises(StaleIndexError, match="qa build"):
        LexicalIndex.load(directory)


def test_document_frequency_counts_the_passages_a_term_scores_in(tmp_path):
    texts = ["知识城与新加坡签署合作备忘录", "昆山高新区安全学校", "知识城固定资产投资增长", "洛阳市科技局"]
    index = LexicalIndex.build(texts)
    index.save(tmp_path)
    for lexical in (index, LexicalIndex.load(tmp_path)):  # built, and memory-mapped
        for term in {t for text in texts for t in tokenize(text)} | {"巴黎"}:
            assert lexical.document_frequency(term) == np.count_nonzero(lexical.term_scores([term])), term
        assert lexical.document_frequency("") == 0  # bm25s's empty token, with no column
    assert index.document_frequency("知识") == 2 and index.document_frequency("巴黎") == 0
    assert LexicalIndex.build([""]).document_frequency("知识") == 0  # no vocabulary at all


@pytest.mark.parametrize("seed", range(4))
def test_best_passages_among_a_million_are_those_of_a_full_sort(seed):
    # At a million passages top_n bounds the 100th best by blocks' best scores; the
    # passages it returns, and their order (ties by position), must be a full sort's.
    # Scores as BM25 gives them: most passages zero, a few levels repeated (ties), and
    # sometimes fewer blocks scoring than passages asked for (the plain path then).
    from qa.stores.bm25 import top_n

    rng = np.random.default_rng(seed)
    scores = np.zeros(1_000_000, dtype=np.float32)
    scoring = rng.choice(scores.size, size=[200_000, 5_000, 300, 40][seed], replace=False)
    scores[scoring] = rng.choice(np.float32([0.5, 1.25, 2.0, 3.5, 7.0]), size=scoring.size)
    positive = np.flatnonzero(scores > 0)
    for n in (1, 10, 100):
        expected = positive[np.argsort(-scores[positive], kind="stable")[:n]]
        ids, best = top_n(scores, n)
        assert ids.tolist() == expected.tolist()
        assert best.tolist() == scores[expected].tolist()
