"""Retrieval question answering over Chinese news articles, with cited passages."""

from qa.search.answer import answer
from qa.index.build import build_index
from qa.search.retriever import retrieve
from qa.schema import Answer, Hit
from qa.settings import Settings

__all__ = ["Answer", "Hit", "Settings", "answer", "build_index", "retrieve"]
