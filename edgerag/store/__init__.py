"""A collection on disk: SQLite (documents, chunks, FTS5) + an hnswlib file, the only code touching those files."""

from .collection import Collection, list_collections

__all__ = ["Collection", "list_collections"]
