"""SQLite schema as an append-only list of migrations, recorded in the `migrations` table.

Text is stored once per distinct content (`texts`): exact and near-duplicate chunks from any number of documents
point at the same row, so they are embedded, indexed and retrieved once. A near-duplicate chunk also keeps its
own wording (`chunks.own_text`), so a citation always quotes what its document really says. `texts.id` is also the hnswlib label,
and it is AUTOINCREMENT so a deleted label is never reused (the vector file may lag SQLite after a crash and is
reconciled on open; see vectors.py).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone

BUSY_SECONDS = 30.0  # how long a connection waits for another one's lock before "database is locked"

MIGRATIONS: list[str] = [
    # 1: documents, texts, chunk occurrences, FTS5 over texts
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL UNIQUE,          -- absolute path when ingested
        content_hash TEXT NOT NULL,         -- sha256 of the file bytes
        size INTEGER NOT NULL,
        format TEXT NOT NULL,
        title TEXT,
        n_chunks INTEGER NOT NULL,
        ingested_at TEXT NOT NULL
    );
    CREATE INDEX documents_hash ON documents(content_hash);
    CREATE TABLE texts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        norm_hash TEXT NOT NULL UNIQUE,     -- sha1 of the normalised text: exact-duplicate key
        simhash INTEGER NOT NULL,           -- 64-bit simhash (signed) for near-duplicates
        text TEXT NOT NULL,
        embedding BLOB NOT NULL             -- float32[dim], the source of truth the hnswlib file is rebuilt from
    );
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,               -- position in the document
        text_id INTEGER NOT NULL REFERENCES texts(id),
        page INTEGER,
        heading TEXT,
        start INTEGER NOT NULL,             -- character offsets in the document's extracted text
        end INTEGER NOT NULL,
        n_tokens INTEGER NOT NULL
    );
    CREATE INDEX chunks_doc ON chunks(doc_id);
    CREATE INDEX chunks_text ON chunks(text_id);
    CREATE VIRTUAL TABLE texts_fts USING fts5(text, content='texts', content_rowid='id', tokenize='porter unicode61');
    CREATE TRIGGER texts_ai AFTER INSERT ON texts BEGIN
        INSERT INTO texts_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER texts_ad AFTER DELETE ON texts BEGIN
        INSERT INTO texts_fts(texts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    """,
    # 2: a near-duplicate chunk shares its text's vector and FTS row but keeps its own wording for citations
    "ALTER TABLE chunks ADD COLUMN own_text TEXT;",
    # 3: headings are indexed with their text (a question naming a section must match it in BM25 and dense);
    # the text's identity includes its heading. documents.chunking records the chunker parameters a document
    # was split with, so changing chunk_tokens/chunk_overlap re-chunks it instead of calling it unchanged.
    """
    ALTER TABLE texts ADD COLUMN heading TEXT;
    ALTER TABLE documents ADD COLUMN chunking TEXT NOT NULL DEFAULT '';
    DROP TRIGGER texts_ai;
    DROP TRIGGER texts_ad;
    DROP TABLE texts_fts;
    CREATE VIRTUAL TABLE texts_fts USING fts5(heading, text, content='texts', content_rowid='id',
                                              tokenize='porter unicode61');
    CREATE TRIGGER texts_ai AFTER INSERT ON texts BEGIN
        INSERT INTO texts_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text);
    END;
    CREATE TRIGGER texts_ad AFTER DELETE ON texts BEGIN
        INSERT INTO texts_fts(texts_fts, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text);
    END;
    INSERT INTO texts_fts(texts_fts) VALUES ('rebuild');
    """,
    # 4: the file's modification time (unix seconds; NULL for records, and for files until the next ingest sees
    # them), for `--where modified>DATE` filters
    "ALTER TABLE documents ADD COLUMN modified REAL;",
]


def connect(path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_SECONDS, isolation_level=None)  # explicit BEGIN/COMMIT below
    conn.row_factory = sqlite3.Row
    _set_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across process kills
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


def _set_wal(conn: sqlite3.Connection, seconds: float = BUSY_SECONDS) -> None:
    """WAL mode, waiting for other connections: switching a new file's journal mode needs a lock that SQLite's busy
    timeout does not wait for, so connections opening a new store at once got "database is locked"."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT id FROM migrations")}
    for number, sql in enumerate(MIGRATIONS, start=1):
        if number in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another connection that opened the same old store at the same
            # time (the TUI reads a collection from worker threads) may have applied it while this one waited.
            if conn.execute("SELECT 1 FROM migrations WHERE id = ?", (number,)).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)",
                         (number, datetime.now(timezone.utc).isoformat(timespec="seconds")))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(sql: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (which contain ';') whole."""
    out, buf = [], ""
    for line in sql.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
