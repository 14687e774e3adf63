"""English questions reach Chinese text through the CC-CEDICT dictionary (no model needed)."""

from __future__ import annotations

from qa.search.query import cross_language_query, unknown_share
from qa.stores.bm25 import LexicalIndex
from qa.text.translate import english_question_terms, romanised_in

PASSAGES = [
    "知识城引进了14所高校研究生院和孵化器，在读研究生超过6000人。",
    "洛阳将实施新一轮“河洛英才计划”，加大创新人才引育留用力度。",
    "六大网格工作站共检查企业8083家，发现隐患15004处。",
]


def terms_of(question: str) -> dict[str, tuple[str, ...]]:
    return {t.word: t.chinese for t in english_question_terms(question)}


def test_content_words_get_chinese_candidates():
    terms = terms_of("How many postgraduate schools and incubators has the Knowledge City brought in?")
    assert "研究生" in terms["postgraduate"]
    assert "孵化器" in terms["incubators"]  # plural found through its singular
    assert "知识" in terms["knowledge"] and "城市" in terms["city"]
    assert "how" not in terms and "many" not in terms  # question words are not topics


def test_places_phrases_and_numbers():
    assert "洛阳" in terms_of("What does Luoyang plan?")["luoyang"]
    assert "炒饭" in terms_of("How do I make fried rice?")["fried rice"]  # a phrase, taken whole
    assert terms_of("Who chaired the seminar in 2024?")["2024"] == ("2024",)
    assert terms_of("What did Guochen say?")["guochen"] == ()  # romanised names are unknown


def test_english_question_is_matched_lexically_through_translation():
    index = LexicalIndex.build(PASSAGES)
    query = cross_language_query("What talent programme does Luoyang plan to implement?", index)
    assert "人才" in query and "洛阳" in query
    best, _ = index.search(query, 1)[0]
    assert best == 1
    best, _ = index.search(cross_language_query("How many hazards did the grid workstations find?", index), 1)[0]
    assert best == 2


def test_english_topics_the_texts_never_mention_are_unknown():
    index = LexicalIndex.build(PASSAGES)
    assert unknown_share("What talent plan will Luoyang implement?", index) == 0.0
    assert unknown_share("How do I reset my router password?", index) == 1.0
    assert unknown_share("What is the price of Bitcoin today?", index) == 1.0


def test_words_capitalised_after_the_first_are_names():
    terms = {t.word: t.name for t in english_question_terms("When was Peking University founded in Beijing?")}
    assert terms == {"peking university": True, "founded": False, "beijing": True}
    # The first word is capitalised as the start of the sentence, not as a name.
    assert not any(t.name for t in english_question_terms("Kunshan plans which safety measures?")[:1])
    # A word the dictionary writes in lower case is part of a name, not the name.
    assert [t.word for t in english_question_terms("How long is the Baita Bridge?") if t.name] == ["baita"]


def test_a_romanised_name_is_found_by_the_pinyin_of_the_characters():
    assert romanised_in("Nanyu", "南屿镇新图书馆向公众开放")
    assert romanised_in("guochen", "副局长杜国臣表示")
    assert not romanised_in("hangzhou", "南屿镇新图书馆向公众开放")
    assert not romanised_in("du", "杜")  # one short syllable would match almost any text
