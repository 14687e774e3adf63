"""Retrieval question answering over Chinese news articles, with cited passages."""

from qa.answer import answer
from qa.index import build_index
from qa.retrieve import retrieve
from qa.schema import Answer, Hit
from qa.settings import Settings

__all__ = ["Answer", "Hit", "Settings", "answer", "build_index", "retrieve"]
