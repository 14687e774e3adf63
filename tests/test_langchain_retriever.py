"""The LangChain retriever on the real index: Documents with citations, in a small chain."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core", reason="langchain-core is not installed (pip install -e .[langchain])")

from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import RunnableLambda, RunnablePassthrough  # noqa: E402

from qa.serve.langchain import NewsRetriever  # noqa: E402

pytestmark = pytest.mark.model

QUESTION = "知识城与新加坡签署了多少份合作备忘录？"


def test_documents_carry_the_passage_and_its_citation(real_index):
    docs = NewsRetriever(k=3, retriever=real_index.retriever).invoke(QUESTION)
    assert 1 <= len(docs) <= 3
    top = docs[0]
    assert "81份" in top.page_content
    assert top.metadata["citation"].startswith("《") and top.metadata["source"].endswith(".txt")
    start, end = top.metadata["highlight"]
    assert top.metadata["highlight_text"] in top.page_content
    assert "81份" in top.metadata["highlight_text"] and end > start
    assert top.metadata["verdict"] == "found"


def test_unanswerable_query_gives_no_documents_unless_asked(real_index):
    question = "火星上有水吗？"
    assert NewsRetriever(retriever=real_index.retriever).invoke(question) == []
    closest = NewsRetriever(k=2, retriever=real_index.retriever, only_relevant=False).invoke(question)
    assert len(closest) == 2 and all(doc.metadata["verdict"] == "not_found" for doc in closest)


def test_in_a_chain_the_model_is_given_numbered_cited_passages(real_index):
    def format_docs(docs):
        return "\n\n".join(f"[{i}] {d.page_content}\n({d.metadata['citation']})" for i, d in enumerate(docs, 1))

    prompt = ChatPromptTemplate.from_template(
        "Answer from the passages, citing [n].\n\n{context}\n\nQuestion: {question}"
    )
    seen = []

    def model(prompt_value):  # a stand-in LLM: records its prompt, answers with the first citation
        text = prompt_value.to_string()
        seen.append(text)
        return text.split("\n(")[1].split(")\n")[0]

    chain = (
        {"context": NewsRetriever(k=2, retriever=real_index.retriever) | format_docs, "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(model)
    )
    cited = chain.invoke(QUESTION)
    assert "[1] " in seen[0] and "81份" in seen[0] and QUESTION in seen[0]
    assert cited.startswith("《") and "¶" in cited
