"""Where `NewsRetriever` has always been imported from; it lives in qa/serve/langchain.py."""

from qa.serve.langchain import NewsRetriever, to_document

__all__ = ["NewsRetriever", "to_document"]
