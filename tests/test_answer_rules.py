"""The rules behind ranking and "nothing found": answer types, unknown words, language, fusion."""

from __future__ import annotations

import numpy as np
import pytest

from qa.search.answer import question_language
from qa.search.answer_type import LIST, QUANTITY, TIME, expected_answer, sentence_fits
from qa.search.passages import rrf
from qa.search.query import unknown_share
from qa.stores.bm25 import LexicalIndex
from qa.text.tokens import content_words


@pytest.mark.parametrize(
    "question, kind, unit",
    [
        ("洛阳市科技局调研走访了多少家企业？", QUANTITY, "家"),
        ("安全学校累计授课多少人次？", QUANTITY, "人次"),
        ("知识城打造的创新谷面积有多大？", QUANTITY, ""),
        ("How many measures did the bureau introduce?", QUANTITY, ""),
        ("知识城“3+1”中心旗舰项目是哪一年诞生的？", TIME, ""),
        ("When was the seminar held?", TIME, ""),
        ("知識城新引進了哪些戰略性新興產業項目？", LIST, ""),
    ],
)
def test_expected_answer_kind(question, kind, unit):
    expected = expected_answer(question)
    assert expected is not None and expected.kind == kind and expected.unit == unit


def test_questions_without_a_particular_answer_kind():
    assert expected_answer("张平认为知识城应该提前做好哪方面的战略布局？") is None
    assert expected_answer("Who chaired the seminar?") is None


def test_a_number_must_carry_the_unit_asked_for():
    asked = expected_answer("洛阳市科技局调研走访了多少家企业？")
    assert sentence_fits(asked, "调研走访企业50余家，收集及受理各类问题38个。")
    assert not sentence_fits(asked, "设置15个课堂教学点和12个现场教学点")
    assert sentence_fits(expected_answer("出台了多少项举措？"), "出台服务“万人助万企”活动九项举措")
    assert sentence_fits(expected_answer("授课多少人次？"), "累计授课近3000人次")


def test_a_list_answer_names_several_items():
    which = expected_answer("推进安全宣传“五进”进哪些地方？")
    assert sentence_fits(which, "推进安全生产理念进企业、进农村、进社区、进学校、进家庭；")
    assert not sentence_fits(which, "建设起安全、环保服务阵地。")  # two items are not "which ones"
    pair = expected_answer("联合了哪两个办事处？")
    assert sentence_fits(pair, "联合昆山市娄江办事处、昆山市南星渎办事处")


def test_time_answer_is_a_date_or_year():
    when = expected_answer("总体规划是哪一年获得国务院批复的？")
    assert sentence_fits(when, "2020年,知识城的总体规划获得国务院批复")
    assert not sentence_fits(when, "知识城的总体规划获得国务院批复")


def test_content_words_leave_out_question_and_phrasing_words():
    words = content_words("新加坡有几家大型国企已经在知识城落户？")
    assert "新加坡" in words and "落户" in words
    assert not {"几家", "已经", "有"} & set(words)
    assert content_words("知識城的總體規劃") == content_words("知识城的总体规划")  # script-blind


def test_unknown_share_tells_questions_the_articles_cannot_answer():
    index = LexicalIndex.build(
        [
            "知识城与新加坡的合作日益紧密，签署了81份合作备忘录。",
            "昆山高新区共发放相关宣传资料1.2万份。",
        ]
    )
    assert unknown_share("知识城与新加坡签署了多少份合作备忘录？", index) == 0.0
    assert unknown_share("知識城與新加坡簽署了多少份合作備忘錄？", index) == 0.0
    assert unknown_share("知识城明年的财政预算是多少？", index) > 0.5
    assert unknown_share("昆山高新区的GDP目标是多少？", index) > 0.33


@pytest.mark.parametrize(
    "question, language",
    [("知识城在哪里？", "zh-Hans"), ("知識城在哪裡？", "zh-Hant"), ("Where is the Knowledge City?", "en")],
)
def test_question_language(question, language):
    assert question_language(question) == language


def test_weighted_rrf_on_a_hand_computed_case():
    dense = np.array([0.9, 0.8, 0.7])  # ranks 1, 2, 3
    lexical = np.array([0.0, 5.0, 1.0])  # ranks 3 (but scores 0), 1, 2
    fused = rrf([dense, lexical], [1.0, 0.5])
    assert fused == pytest.approx([1 / 61, 1 / 62 + 0.5 / 61, 1 / 63 + 0.5 / 62])
    assert list(np.argsort(-fused)) == [1, 2, 0]


@pytest.mark.parametrize(
    "question, answering, not_answering",
    [
        # A count in Chinese numerals before a measure word outside the first list held no
        # number, so a passage with 两千名 outranked the one with the answer (八十支).
        (
            "龙舟比赛有多少支队伍参加？",
            "南宁今天举行了龙舟比赛，共有八十支队伍参加。",
            "深圳今天举行游泳比赛，共有两千名选手参加。",
        ),
        ("今年春茶产量是多少？", "西湖龙井今年春茶产量达到八百吨。", "西湖龙井的茶园在杭州西湖一带。"),
        ("这座大桥全长多少米？", "青秀大桥全长一千二百米。", "青秀大桥是南宁市新建的大桥。"),
        ("新区面积有多少平方公里？", "新区规划面积约一百二十三平方公里。", "新区位于城市东北部。"),
        ("出口增长了多少？", "出口增长了百分之十二。", "出口形势总体平稳。"),
    ],
)
def test_a_count_in_chinese_numerals_is_an_answer_of_its_measure_word(question, answering, not_answering):
    expected = expected_answer(question)
    assert expected.kind == QUANTITY
    assert sentence_fits(expected, answering)
    assert not sentence_fits(expected, not_answering)


def test_words_with_a_numeral_that_are_not_counts_hold_no_number():
    anything = expected_answer("有多少？")
    for sentence in ("他们一起参加了比赛。", "其中一部分人留了下来。", "此事一分为二地看。"):
        assert not sentence_fits(anything, sentence), sentence
