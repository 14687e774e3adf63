"""Split a clean article into passages at sentence ends, keeping each passage's offsets.

The only module that imports langchain-text-splitters.
"""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa.schema import Article, Chunk
from qa.text.sentences import CLOSING_QUOTES, FULL_STOPS, SEMICOLONS

# Tried in order: paragraphs, then Chinese/Latin sentence ends (with any closing quote
# that follows, so `。”` stays with its sentence), then clause marks, then anything.
# A sentence is only cut at a comma when it alone exceeds the chunk size.
SEPARATORS = [
    r"\n",
    f"[{FULL_STOPS}][{CLOSING_QUOTES}]*",
    f"[{SEMICOLONS}][{CLOSING_QUOTES}]*",
    r"[，,、：:]",
    r"",
]


def make_splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    """A splitter that cuts at paragraphs, then sentence ends, then clauses (see SEPARATORS)."""
    if chunk_size < 20:
        raise ValueError(f"chunk_size must be at least 20 characters, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"chunk_overlap must be between 0 and chunk_size-1, got {chunk_overlap}")
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        strip_whitespace=True,
    )


def chunk_article(article: Article, chunk_size: int, chunk_overlap: int = 0) -> list[Chunk]:
    """Split `article.text` into chunks with their character offsets in the article.

    Returns:
        Chunks in article order; `article.text[c.start:c.end] == c.text` for each.
    """
    splitter = make_splitter(chunk_size, chunk_overlap)
    chunks: list[Chunk] = []
    for piece in splitter.split_text(article.text):
        # The splitter returns substrings in order; overlap can make one start before
        # the previous end, so search from just after the previous start.
        search_from = chunks[-1].start + 1 if chunks else 0
        start = article.text.find(piece, search_from)
        if start < 0:  # pragma: no cover - would mean the splitter rewrote text
            raise AssertionError(f"chunk not found in {article.source}: {piece[:30]!r}")
        end = start + len(piece)
        chunks.append(
            Chunk(
                source=article.source,
                title=article.title,
                date=article.date,
                publication=article.publication,
                start=start,
                end=end,
                text=piece,
                paragraph=article.paragraph_at(start),
            )
        )
    return chunks


def chunk_corpus(articles: list[Article], chunk_size: int, chunk_overlap: int = 0) -> list[Chunk]:
    """Chunks of every article, in corpus order (see `chunk_article`)."""
    return [chunk for article in articles for chunk in chunk_article(article, chunk_size, chunk_overlap)]
