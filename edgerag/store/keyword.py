"""The keyword (BM25) index: a file derived from SQLite, the way vectors.hnsw is, so BM25 scoring is fast.

SQLite (the `texts` table and its FTS5 mirror) stays the record of truth; `keywords.bm25` is a cache that can
lag after a crash. It holds a precomputed score matrix in bm25s's layout (one sparse column of BM25 weights per
term) plus each text's token ids, so a query is a sum of a few sparse columns (~0.2 ms at 7k chunks, against
FTS5's `bm25()` over an OR query, which scores every matching row in SQL) and an update re-tokenizes only the
new texts. The matrix is built with numpy rather than by bm25s itself: bm25s floors idf at 0 where FTS5 floors
it at 1e-6 (so in a small collection a term found in half the texts would match nothing), and its per-document
Python loop is several times slower to rebuild after an update. bench/keyword_leg.py measures this against FTS5,
FTS5 with pruned queries, bm25s and tantivy; ARCHITECTURE.md has the table.

Scoring is FTS5's `bm25()` on the same rows: unicode61-style tokens (alphanumeric runs, lower case, diacritics
folded), the original Porter stemmer, k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) / (n + 0.5)) floored at
1e-6, heading and text counted as one row, as FTS5 does.

Consistency, as for the vector file: the file is written to a per-writer temp name and renamed into place, and
it carries a stamp, the (largest id, count) of the texts it indexes. Text ids are AUTOINCREMENT and never
reused, so if SQLite's `max(id), count(*)` equals the stamp, the file indexes exactly SQLite's texts; otherwise
the exact difference is applied (texts added, deleted) on open. Readers reconcile in memory; the writer saves.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..text import REQUEST_WORDS, STOPWORDS

KEYWORDS_FILE = "keywords.bm25"
FORMAT = 1  # bump when tokenisation or scoring changes: a file of another format is rebuilt
K1, B = 1.2, 0.75  # FTS5's bm25() constants
_TOKEN = re.compile(r"[^\W_]+")  # FTS5 unicode61: runs of letters and digits; '_' and punctuation separate
_MARKS = re.compile(r"[\u0300-\u036f]")  # combining diacritics left by NFKD
_stemmer = None
_stems: dict[str, str] = {}  # word -> stem: a corpus has far fewer distinct words than words


def _stem_words(words: list[str]) -> list[str]:
    """Porter stems, as FTS5's porter tokenizer makes them: the original Porter algorithm (snowballstemmer's
    "porter", which runs on PyStemmer's C code when installed), words shorter than 3 or longer than 64 characters
    passed through."""
    missing = [w for w in set(words) if w not in _stems]
    if missing:
        global _stemmer
        if _stemmer is None:
            import snowballstemmer

            _stemmer = snowballstemmer.stemmer("porter")
        if len(_stems) > 500_000:
            _stems.clear()
        for w, stem in zip(missing, _stemmer.stemWords(missing)):
            _stems[w] = w if len(w) < 3 or len(w) > 64 else stem
    return [_stems[w] for w in words]


def words(text: str) -> list[str]:
    text = text.lower()
    if not text.isascii():
        text = _MARKS.sub("", unicodedata.normalize("NFKD", text))
    return _TOKEN.findall(text)


def tokenize(text: str) -> list[str]:
    """A text's terms as FTS5's 'porter unicode61' tokenizer sees them."""
    return _stem_words(words(text))


def query_terms(query: str) -> list[str]:
    """A query's terms as the FTS5 path OR-ed them: distinct words of two or more characters, then stemmed (two
    words with one stem count twice, as two FTS5 phrases would)."""
    return _stem_words([w for w in dict.fromkeys(words(query)) if len(w) > 1])


def indexed_words(heading: str | None, text: str) -> str:
    """A text as FTS5 indexes it (heading and text columns; bm25() counts them as one row)."""
    return f"{heading}\n{text}" if heading else text


@dataclass(frozen=True)
class Coverage:
    """KeywordIndex.coverage's answer."""
    share: float  # 0-1: the weighted share of the query's terms the best text mentions
    missing: tuple[str, ...]  # the query's words (as written) that text does not mention, heaviest first


class KeywordIndex:
    """BM25 over the collection's texts; labels are `texts.id`. `conn` is the collection's SQLite connection."""

    def __init__(self, path: Path, conn):
        self.path, self.conn = Path(path), conn
        self._empty()
        if self.path.is_file():
            try:
                self._load()
            except (OSError, ValueError, KeyError, EOFError):
                self._empty()  # a damaged or old-format file is only a cache: reconcile() rebuilds it from SQLite
                self.dirty = True

    def _empty(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)  # row -> text id
        self.tokens: list[np.ndarray] = []  # row -> its term ids (int32), kept so updates re-tokenize nothing old
        self.vocab: dict[str, int] = {}
        self.scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # CSC (data, rows, indptr) or stale
        self.dirty = False  # memory differs from the file

    def __len__(self) -> int:
        return len(self.ids)

    # -- queries -------------------------------------------------------------------------------------------
    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """[(text_id, bm25 score)] best first (higher is better), texts matching at least one query term; with
        `allowed` (sorted text ids, a metadata filter), only those. Scores stay the collection's (idf and average
        length over all texts), so a filter changes which texts compete, never a text's score."""
        if k <= 0 or not len(self.ids):
            return []
        data, rows, indptr = self._score_matrix()  # first: rebuilding it may renumber the vocabulary
        term_ids = [self.vocab[t] for t in query_terms(query) if t in self.vocab]
        if not term_ids:
            return []
        spans = [(indptr[t], indptr[t + 1]) for t in term_ids]
        hit_rows = np.concatenate([rows[a:b] for a, b in spans])
        scores = np.bincount(hit_rows, weights=np.concatenate([data[a:b] for a, b in spans]), minlength=len(self.ids))
        found = np.flatnonzero(scores > 0)
        if allowed is not None:
            found = found[np.isin(self.ids[found], allowed)]
        if len(found) > k:
            found = found[np.argpartition(-scores[found], k - 1)[:k]]
        found = found[np.lexsort((self.ids[found], -scores[found]))]  # ties: lower id first, as FTS5's scan
        return [(int(self.ids[r]), float(scores[r])) for r in found]

    def coverage(self, query: str, texts: Iterable[str]) -> Coverage:
        """How much of what the query asks about the best of `texts` mentions: the idf-weighted share of the
        query's content terms (stopwords and request words like "explain" left out) found in that text, 0-1.
        idf is Lucene's, ln(1 + (N - n + 0.5) / (n + 0.5)), positive for every term (FTS5's floors a term in over
        half the texts at ~0, which in a small collection would weigh its main subject as nothing). A term the
        collection never uses counts only when written as a name or number ("Zephyr", "X9", "1999"): a question
        about something the documents do not name is the clearest "not found", while an ordinary word they do
        not use ("How long does it last?") is more often the asker's wording than a missing subject.
        Share 1.0 for a query without such terms, which gives nothing to judge by."""
        weights = self._asked(query)
        total = sum(w for w, _ in weights.values())
        if not total:
            return Coverage(1.0, ())
        best, best_terms = -1.0, set()
        for text in texts:
            terms = set(tokenize(text))
            if (share := self._share(weights, total, terms)) > best:
                best, best_terms = share, terms
        if best < 0:
            return Coverage(0.0, tuple(surface for _, surface in sorted(weights.values(), reverse=True)))
        missing = sorted((w, surface) for t, (w, surface) in weights.items() if t not in best_terms)
        return Coverage(best, tuple(surface for _, surface in reversed(missing)))

    def shares(self, query: str, texts: Iterable[str]) -> list[float]:
        """Each text's share of what the query asks about, as `coverage` weighs it (1.0 each for a query without
        content terms)."""
        weights = self._asked(query)
        total = sum(w for w, _ in weights.values())
        return [self._share(weights, total, set(tokenize(text))) for text in texts]

    @staticmethod
    def _share(weights: dict[str, tuple[float, str]], total: float, terms: set[str]) -> float:
        return sum(w for t, (w, _) in weights.items() if t in terms) / total if total else 1.0

    def _asked(self, query: str) -> dict[str, tuple[float, str]]:
        """The query's weighted terms: stem -> (idf weight, the word as written)."""
        n = len(self.ids)
        _, _, indptr = self._score_matrix()
        out: dict[str, tuple[float, str]] = {}
        for match in _TOKEN.finditer(query):
            word = match.group(0)
            if word.lower() in STOPWORDS or word.lower() in REQUEST_WORDS or (len(word) < 2 and not word.isdigit()):
                continue
            before = query[:match.start()].rstrip()
            opens_sentence = not before or before[-1] in ".!?:"
            named = not word.isalpha() or (word[0].isupper() and not opens_sentence)  # "Name the…" is no name
            for term in tokenize(word):
                df = int(indptr[self.vocab[term] + 1] - indptr[self.vocab[term]]) if term in self.vocab else 0
                if df or named:
                    out.setdefault(term, (float(np.log1p((n - df + 0.5) / (df + 0.5))), word))
        return out

    def _score_matrix(self):
        if self.scores is None:
            self._reindex()
        return self.scores

    def _reindex(self) -> None:
        """Recompute the BM25 weights from the cached token ids (idf and average length change with every update):
        FTS5's formula exactly, idf floored at 1e-6 as FTS5 does (a term in half the texts still matches), laid out
        as bm25s lays out its index (a CSC matrix, one column per term). Vectorised: ~0.1 s at 8k chunks."""
        self._compact_vocab()
        n, n_terms = len(self.ids), len(self.vocab)
        lengths = np.fromiter((len(t) for t in self.tokens), dtype=np.int64, count=n)
        if not n or not n_terms or not lengths.sum():
            self.scores = (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(n_terms + 1, np.int64))
            return
        pairs = np.repeat(np.arange(n, dtype=np.int64), lengths) * n_terms + np.concatenate(self.tokens)
        pairs, tf = np.unique(pairs, return_counts=True)  # sorted by row, then term
        rows, terms = pairs // n_terms, pairs % n_terms
        df = np.bincount(terms, minlength=n_terms)
        idf = np.log((n - df + 0.5) / (df + 0.5))
        idf[idf <= 0] = 1e-6
        norm = K1 * (1 - B + B * lengths / lengths.mean())
        weights = idf[terms] * tf * (K1 + 1) / (tf + norm[rows])
        order = np.argsort(terms, kind="stable")  # by term, rows ascending within each term
        self.scores = (weights[order].astype(np.float32), rows[order].astype(np.int32),
                       np.concatenate([[0], np.cumsum(df)]).astype(np.int64))

    def _compact_vocab(self) -> None:
        """Drop terms no text uses any more (deleted texts leave them behind) once they are a quarter of all."""
        used = np.unique(np.concatenate(self.tokens)) if self.tokens else np.zeros(0, np.int32)
        if len(used) >= 0.75 * len(self.vocab):
            return
        remap = np.full(len(self.vocab), -1, dtype=np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        terms = list(self.vocab)
        self.vocab = {terms[old]: new for new, old in enumerate(used.tolist())}
        self.tokens = [remap[t] for t in self.tokens]

    # -- updates (called after the SQLite transaction that made them has committed) --------------------------
    def add(self, rows: Iterable[tuple[int, str | None, str]]) -> None:
        """Index (text id, heading, text) rows."""
        new_ids, new_tokens = [], []
        for text_id, heading, text in rows:
            terms = tokenize(indexed_words(heading, text))
            new_ids.append(text_id)
            new_tokens.append(np.fromiter((self.vocab.setdefault(t, len(self.vocab)) for t in terms),
                                          dtype=np.int32, count=len(terms)))
        if new_ids:
            self.ids = np.concatenate([self.ids, np.asarray(new_ids, dtype=np.int64)])
            self.tokens += new_tokens
            self.scores, self.dirty = None, True

    def delete(self, text_ids) -> None:
        gone = np.isin(self.ids, np.asarray(list(text_ids), dtype=np.int64))
        if gone.any():
            keep = np.flatnonzero(~gone)
            self.ids = self.ids[keep]
            self.tokens = [self.tokens[i] for i in keep]
            self.scores, self.dirty = None, True

    # -- consistency with SQLite -----------------------------------------------------------------------------
    def stamp(self) -> tuple[int, int]:
        return (int(self.ids.max()) if len(self.ids) else 0, len(self.ids))

    def sqlite_stamp(self) -> tuple[int, int]:
        largest, count = self.conn.execute("SELECT max(id), count(*) FROM texts").fetchone()
        return (largest or 0, count)

    def reconcile(self) -> tuple[int, int]:
        """Make the index match SQLite's texts; returns (added, deleted). One small query when they already match."""
        if self.stamp() == self.sqlite_stamp():
            return 0, 0
        in_sqlite = {r[0] for r in self.conn.execute("SELECT id FROM texts")}
        here = set(self.ids.tolist())
        extra, missing = here - in_sqlite, sorted(in_sqlite - here)
        self.delete(extra)
        for start in range(0, len(missing), 900):  # stay under SQLite's bound-parameter limit
            part = missing[start:start + 900]
            self.add(self.conn.execute(f"SELECT id, heading, text FROM texts WHERE id IN ({','.join('?' * len(part))}) "
                                       "ORDER BY id", part).fetchall())
        return len(missing), len(extra)

    def problems(self, sqlite_ids: set[int]) -> list[str]:
        here = set(self.ids.tolist())
        if here == sqlite_ids:
            return []
        return [f"keyword index: {len(sqlite_ids - here)} missing, {len(here - sqlite_ids)} stale"]

    # -- the file --------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the file atomically (temp file under this process's name, fsync, rename). Writers only."""
        if not self.dirty:
            return
        data, rows, indptr = self._score_matrix()
        lengths = np.fromiter((len(t) for t in self.tokens), dtype=np.int64, count=len(self.tokens))
        buf = io.BytesIO()
        np.savez(buf, header=np.array([FORMAT, *self.stamp()], dtype=np.int64), ids=self.ids,
                 tokens=np.concatenate(self.tokens) if self.tokens else np.zeros(0, np.int32), lengths=lengths,
                 vocab=np.frombuffer("\n".join(self.vocab).encode("utf-8"), dtype=np.uint8),
                 data=data, rows=rows, indptr=indptr)
        tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.dirty = False

    def _load(self) -> None:
        with np.load(self.path, allow_pickle=False) as f:
            header = f["header"]
            if int(header[0]) != FORMAT:
                raise ValueError(f"keyword index format {header[0]}, expected {FORMAT}")
            ids, tokens, lengths = f["ids"], f["tokens"], f["lengths"]
            vocab_bytes = f["vocab"].tobytes().decode("utf-8")
            scores = (f["data"], f["rows"], f["indptr"])
        terms = vocab_bytes.split("\n") if vocab_bytes else []
        if tuple(int(x) for x in header[1:]) != ((int(ids.max()) if len(ids) else 0), len(ids)) \
                or int(lengths.sum()) != len(tokens) or len(scores[2]) != len(terms) + 1:
            raise ValueError("keyword index file is inconsistent")
        self.ids, self.vocab, self.scores = ids, {t: i for i, t in enumerate(terms)}, scores
        self.tokens = np.split(tokens, np.cumsum(lengths)[:-1]) if len(ids) else []


def remove_strays(folder: Path) -> None:
    """Temp files left by a killed writer (call while holding the write lock: no other writer is live)."""
    for stray in Path(folder).glob(KEYWORDS_FILE + ".tmp-*"):
        stray.unlink(missing_ok=True)
