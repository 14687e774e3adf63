"""Cleaning and chunking on the real seed files and the bundled corpus (no model needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

from qa.errors import CorpusError
from qa.ingest.chunking import chunk_article, chunk_corpus
from qa.ingest.clean import clean_text
from qa.ingest.corpus import load_article, load_corpus

CORPUS = REPO / "corpus"
PINYIN_AFTER_HAN = re.compile(r"[\u4e00-\u9fff]\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+\)")
HAN = r"[\u4e00-\u9fff，。、：；！？“”《》（）]"
SENTENCE_END = re.compile(r"[。！？；：:!?;…][”’」』》）)]*$")


def raw_seed_articles(seeds_dir: Path):
    return [load_article(path) for path in sorted(seeds_dir.glob("*.txt"))]


def paragraph_breaks_inside_sentences(text: str) -> list[str]:
    """Paragraphs that end mid-sentence; headings and bylines (short, no clause) are fine."""
    bad = []
    for paragraph in text.split("\n"):
        if SENTENCE_END.search(paragraph):
            continue
        is_heading = len(paragraph) <= 40 and not re.search(r"[，；]", paragraph)
        if not is_heading:
            bad.append(paragraph[-30:])
    return bad


def test_raw_seeds_lose_converter_pinyin_but_keep_real_parentheses(seeds_dir):
    raw = "".join(path.read_text(encoding="utf-8") for path in seeds_dir.glob("*.txt"))
    assert PINYIN_AFTER_HAN.search(raw), "the seed should contain pinyin annotations to begin with"
    for article in raw_seed_articles(seeds_dir):
        assert not PINYIN_AFTER_HAN.search(article.text), article.source
    web_page = load_article(seeds_dir / "002_c33bae84cf161bf7.txt").text
    assert "發展" in web_page and "發(fā)" not in web_page
    newspaper = load_article(seeds_dir / "000_5e5f0162cd1f913f.txt").text
    assert "（RCEP）" in newspaper
    assert "（2020-2035年）" in newspaper


def test_raw_seeds_have_no_spaces_between_chinese_characters(seeds_dir):
    for article in raw_seed_articles(seeds_dir):
        assert not re.search(f"{HAN} +{HAN}", article.text), article.source
    newspaper = load_article(seeds_dir / "000_5e5f0162cd1f913f.txt").text
    assert "如何抢抓区域全面经济伙伴关系协定" in newspaper
    assert "8月24日" in newspaper and "约60人参加" in newspaper


def test_spaces_between_latin_words_stay():
    assert clean_text("支持 GPU and CPU chips 的 发 展").text == "支持 GPU and CPU chips 的发展"


def test_raw_seeds_have_no_line_break_inside_a_sentence(seeds_dir):
    for article in raw_seed_articles(seeds_dir):
        assert paragraph_breaks_inside_sentences(article.text) == [], article.source
    newspaper = load_article(seeds_dir / "000_5e5f0162cd1f913f.txt").text
    # Sentences the PDF broke over two or more printed lines read whole again.
    assert "中国城市规划设计研究院副总规划师靳东晓对中新广州知识城" in newspaper
    assert "实施“揭榜挂帅”、PI制等，加强应用基础研究" in newspaper


def test_site_disclaimer_and_comment_prompt_are_not_article_text(seeds_dir):
    article = load_article(seeds_dir / "002_c33bae84cf161bf7.txt")
    assert "新浪聲明" not in article.text and "審閱" not in article.text
    assert not article.text.rstrip().endswith("評論")
    assert article.text.rstrip().endswith("等同志。")
    assert article.publication == "新浪"  # learnt from the disclaimer it removed


def test_raw_file_without_front_matter_gets_title_and_date(seeds_dir):
    article = load_article(seeds_dir / "002_c33bae84cf161bf7.txt")
    assert article.title == "002_c33bae84cf161bf7"  # no headline in the text: the file name
    assert article.date == "2024-11-20"
    dropped = Path(seeds_dir / "000_5e5f0162cd1f913f.txt")
    assert load_article(dropped).text.startswith("▶ 本报特约通讯员陈土华谭小洁钟咏妍\n")


def test_bundled_corpus_holds_the_four_articles_with_metadata():
    articles = {a.source: a for a in load_corpus(CORPUS)}
    assert len(articles) == 4
    titles = {a.title for a in articles.values()}
    assert "中新广州知识城：打造大湾区高质量发展重要引擎" in titles
    assert "党建引领洛阳科技创新提质增效" in titles
    assert "昆山高新区：学史力行 用心筑牢安全根基" in titles
    for article in articles.values():
        assert article.seed in {"000_5e5f0162cd1f913f.txt", "002_c33bae84cf161bf7.txt"}
        assert len(article.content_hash) == 64
        assert paragraph_breaks_inside_sentences(article.text) == []
    knowledge_city = next(a for a in articles.values() if a.title.startswith("中新广州知识城"))
    # The Luoyang and Kunshan stories that follow it on the page are not part of it.
    assert "洛阳" not in knowledge_city.text and "昆山" not in knowledge_city.text
    web_page = next(a for a in articles.values() if a.seed.startswith("002"))
    assert web_page.date == "2024-11-20" and web_page.publication == "新浪"


def test_front_matter_without_closing_line_is_refused_not_read_as_text(tmp_path):
    # Read as text, its `title:` line would be the first paragraph and the title lost.
    path = tmp_path / "half.txt"
    path.write_text("---\ntitle: 标题\n正文第一句。正文第二句。\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"half\.txt: front matter .* never closed"):
        load_article(path, tmp_path)


@pytest.mark.parametrize(
    "written, stored",
    [
        ("2023年5月1日", "2023-05-01"),
        ("2023/5/1", "2023-05-01"),
        ("2023-05-01 08:30", "2023-05-01"),
        ("2021-8", "2021-08"),
    ],
)
def test_a_front_matter_date_is_stored_in_the_form_the_date_filter_compares(tmp_path, written, stored):
    """2023年5月1日 was stored as written, and compared as text it fell outside every
    date range that holds it (年 sorts after -)."""
    from qa.schema import Filter

    path = tmp_path / "a.txt"
    path.write_text(f"---\ntitle: 自行车\ndate: {written}\n---\n杭州举行自行车比赛。\n", encoding="utf-8")
    article = load_article(path, tmp_path)
    assert article.date == stored
    assert Filter(date_from="2021-01-01", date_to="2023-12-31").allows(article)


@pytest.mark.parametrize("written", ["not-a-date", "2024-02-30", "2023-13-01", "99999-01-01"])
def test_a_front_matter_date_that_is_no_date_is_refused_with_the_form_to_use(tmp_path, written):
    path = tmp_path / "a.txt"
    path.write_text(f"---\ntitle: 马拉松\ndate: {written}\n---\n广州举行马拉松比赛。\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"a\.txt: the front matter's date .* is not a date; write it as YYYY-MM-DD"):
        load_article(path, tmp_path)


def test_gb18030_file_is_read(tmp_path):
    (tmp_path / "old.txt").write_bytes("旧文章标题\n这是一篇用国标编码保存的文章。".encode("gb18030"))
    [article] = load_corpus(tmp_path)
    assert article.title == "旧文章标题"
    assert "国标编码" in article.text


@pytest.mark.parametrize(
    "content, problem",
    [(b"\x00\x01\x02binary", "binary"), (b"", "no article text")],
)
def test_unusable_corpus_file_is_named_in_the_error(tmp_path, content, problem):
    (tmp_path / "good.txt").write_text("标题\n一句正文。", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(content)
    with pytest.raises(CorpusError, match=rf"bad\.txt.*{problem}|{problem}.*bad\.txt|bad\.txt"):
        load_corpus(tmp_path)


def test_missing_or_empty_corpus_folder_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match=r"no article file \(\.txt, \.md, \.html, \.htm, \.pdf, \.docx, \.png, \.jpg"):
        load_corpus(tmp_path)


@pytest.mark.parametrize("size", [120, 200, 400])
def test_chunk_offsets_point_at_the_chunk_text(size):
    articles = load_corpus(CORPUS)
    by_source = {a.source: a for a in articles}
    chunks = chunk_corpus(articles, size)
    assert chunks
    for chunk in chunks:
        article = by_source[chunk.source]
        assert article.text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= size
        assert chunk.paragraph == article.text.count("\n", 0, chunk.start) + 1


def test_chunks_end_at_sentence_ends_unless_a_sentence_is_too_long():
    articles = load_corpus(CORPUS)
    size = 200
    for article in articles:
        chunks = chunk_article(article, size)
        # Together the chunks cover every sentence of the article.
        covered = "".join(c.text for c in chunks)
        assert re.sub(r"\s", "", covered) == re.sub(r"\s", "", article.text)
        for chunk in chunks:
            tail = article.text[chunk.end : chunk.end + 1]
            ends_sentence = SENTENCE_END.search(chunk.text) or tail in ("", "\n")
            if not ends_sentence:
                # Only allowed when the sentence it cuts is longer than a chunk.
                sentence_start = max(article.text.rfind(p, 0, chunk.end) for p in "。！？；\n") + 1
                sentence_end = min(
                    (i for i in (article.text.find(p, chunk.end) for p in "。！？；\n") if i >= 0),
                    default=len(article.text),
                )
                assert sentence_end - sentence_start > size, chunk.text[-30:]
