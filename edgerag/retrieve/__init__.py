"""Question → ranked chunks: dense (hnswlib), sparse (FTS5 bm25), hybrid (reciprocal-rank fusion), rerank."""

from .search import Hit, Retriever

__all__ = ["Hit", "Retriever"]
