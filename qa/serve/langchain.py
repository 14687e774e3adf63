"""The engine as a LangChain retriever: `NewsRetriever` returns the cited passages as
`Document`s, for chains that already speak LangChain.

This is the only module that imports langchain-core (the optional `langchain`
extra: `pip install -e .[langchain]`); nothing else in `qa` needs it.
"""

from __future__ import annotations

from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "qa.serve.langchain needs langchain-core; install it with `pip install -e .[langchain]`"
    ) from error
from pydantic import ConfigDict

from qa.schema import Hit
from qa.search.answer import answer

__all__ = ["NewsRetriever", "to_document"]


class NewsRetriever(BaseRetriever):
    """Passages of the indexed articles that answer a query, best first.

    Each `Document`'s `page_content` is the passage (the answering sentence in its
    paragraph, original script); its metadata holds what a citation needs: `title`,
    `source`, `date`, `paragraph`, `citation`, `score`, `start`/`end` and `highlight`
    (article offsets), `highlight_text`, and the question's `verdict`.

    With `only_relevant` (the default) the judge's verdict applies: a query the
    articles cannot answer gets no documents, rather than unrelated passages.

    Example:
        >>> from qa.serve.langchain import NewsRetriever
        >>> docs = NewsRetriever(k=3).invoke("知识城与新加坡签署了多少份合作备忘录？")  # doctest: +SKIP
        >>> docs[0].metadata["citation"]  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int | None = None  # passages per query; None: the top_k setting (5)
    mode: str = "hybrid"  # "hybrid", "dense" or "lexical"
    only_relevant: bool = True
    settings: Any = None  # qa.settings.Settings; None: Settings.load() (QA_* environment)
    retriever: Any = None  # a qa.search.retriever.Retriever to use instead of the cached one
    where: Any = None  # a qa.schema.Filter limiting the articles searched

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = answer(
            query,
            self.k,
            mode=self.mode,
            show_unrelated=not self.only_relevant,
            settings=self.settings,
            retriever=self.retriever,
            where=self.where,
        )
        return [to_document(hit, result.verdict) for hit in result.passages]


def to_document(hit: Hit, verdict: str = "") -> Document:
    """A Hit as a LangChain Document, the citation fields in its metadata."""
    metadata = hit.to_dict()
    text = metadata.pop("text")
    metadata["highlight"] = tuple(hit.highlight) if hit.highlight else None
    metadata["verdict"] = verdict
    return Document(page_content=text, metadata=metadata)
