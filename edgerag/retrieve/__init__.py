"""Question → ranked chunks: dense (hnswlib), sparse (BM25, FTS5-equal scores from the derived keyword index), hybrid
(reciprocal-rank fusion), rerank."""

from .search import Hit, Retriever

__all__ = ["Hit", "Retriever"]
