"""Files inside files (an e-mail's attachments) as documents of their own, kept in step with their parent.

An attachment is stored under the path "<parent path>::<file name>", so search results cite it by both, and it
lives and dies with its parent: re-read when the parent changes (by the attachment's own content hash, so an
unchanged attachment of an edited mail is not embedded again), renamed with it, removed with it, and never
taken for a file of its own on disk by rename detection or deletion scans (sync.py asks parent_of()).
"""

from __future__ import annotations

import hashlib

from .loaders import UnreadableFile, load_bytes

SEP = "::"
MAX_DEPTH = 3  # a mail attached to a mail attached to a mail...; deeper ones are reported, not read


def parent_of(path: str) -> str:
    """The file on disk a document comes from (itself, unless it is an attachment)."""
    return path.split(SEP, 1)[0]


def is_attachment(path: str) -> bool:
    return SEP in path


def children(collection, parent: str) -> dict:
    prefix = parent + SEP
    return {d.path: d for d in collection.documents() if d.path.startswith(prefix)}


def rename_children(collection, old: str, new: str) -> None:
    for path in children(collection, old):
        collection.rename_document(path, new + path[len(old):])


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name.replace(SEP, "_").replace("/", "_").replace("\\", "_") or "attachment"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem} ({seen[name]}).{ext}" if dot else f"{name} ({seen[name]})"
        out.append(name)
    return out


def sync_attachments(collection, writer, parent: str, attachments, stamp: str, done, outcome, chunk_tokens: int,
                     chunk_overlap: int, depth: int = 1) -> None:
    """Bring the attachment documents of `parent` in line with `attachments` (parent just read or re-read).
    `outcome(path, status, reason, chunks)` builds a FileOutcome; `done` reports it."""
    old = children(collection, parent)  # the whole subtree: attachments and theirs
    for att, name in zip(attachments, _unique([a.name for a in attachments])):
        path = f"{parent}{SEP}{name}"
        existing = old.pop(path, None)
        subtree = [p for p in old if p.startswith(path + SEP)]
        for nested in subtree:
            old.pop(nested)  # this attachment's own subtree: kept as is, or synced by the recursive call below
        digest = hashlib.sha256(att.data).hexdigest()
        if existing and existing.content_hash == digest and getattr(existing, "chunking", stamp) == stamp:
            done(outcome(path, "unchanged", "", existing.n_chunks))
            continue
        if depth > MAX_DEPTH:
            done(outcome(path, "failed", f"attachment nested more than {MAX_DEPTH} deep", 0))
            continue
        try:
            loaded = load_bytes(name, att.data)
        except UnreadableFile as exc:
            status = "unsupported" if str(exc).startswith("unsupported type") else "failed"
            done(outcome(path, status, f"attachment: {exc}", 0))
            continue
        if loaded.sections:
            chunks = writer.chunk(loaded, chunk_tokens, chunk_overlap)
            writer.add_chunks(path, digest, len(att.data), loaded, "updated" if existing else "added", chunks)
        if loaded.attachments or subtree:
            sync_attachments(collection, writer, path, loaded.attachments, stamp, done, outcome, chunk_tokens,
                             chunk_overlap, depth + 1)
    for path, doc in old.items():  # no longer attached to the new version (or the parent lost them all)
        collection.delete_document(path)
        done(outcome(path, "removed", "", doc.n_chunks))
