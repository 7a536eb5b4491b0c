"""Moving a collection to another embedder and back: promotion of an adapted embedder, and `--rollback`.

A collection answers with the embedder its vectors were made with (runtime.open_collection), so switching one
collection changes nothing for the others and never touches `models/active.json`.

Order, each step crash-safe on its own:
1. the new vectors for every text are computed beside the live index (in memory; the collection keeps answering
   with the old embedder meanwhile);
2. the current embedder's name and vectors are written to `<collection>/previous-embedder/` (staging folder,
   then one rename), keyed by the hash of each indexed text;
3. `Collection.replace_all_embeddings` commits the new vectors and the embedder's name together in one SQLite
   transaction and rebuilds the vector file (its own crash safety: no file, or one made from the new vectors);
4. the result is checked (reopen with the recorded embedder, integrity check, a search answers).
A kill before 3 commits leaves the old embedder and its vectors; after, the new ones: either way one embedder,
consistent with every stored vector. Rollback is the same switch with the snapshot's vectors (texts added since
are embedded with the old model), and it snapshots what it replaces, so a second rollback goes forward again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import CollectionError
from ..store.collection import Collection

SNAPSHOT = "previous-embedder"
HISTORY = "embedder-history.jsonl"


@dataclass
class SwitchResult:
    collection: str
    previous: str
    current: str
    texts: int
    reused: int  # vectors taken from a cache or the snapshot instead of being computed
    problems: list[str]


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def previous_embedder(folder: Path) -> str | None:
    """The embedder a rollback of the collection in `folder` returns to, if any (without loading its vectors)."""
    try:
        return json.loads((folder / SNAPSHOT / "state.json").read_text(encoding="utf-8"))["embedder_name"]
    except (OSError, ValueError, KeyError):
        return None


def read_snapshot(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    snap = folder / SNAPSHOT
    if not (snap / "state.json").is_file():
        raise CollectionError(f"collection at {folder}: no previous embedder to return to (nothing was promoted)")
    state = json.loads((snap / "state.json").read_text(encoding="utf-8"))
    vectors = np.load(snap / "vectors.npy")
    return state, dict(zip(state["keys"], vectors))


def _write_snapshot(folder: Path, meta: dict, keys: list[str], vectors: np.ndarray) -> None:
    staging = folder / f".{SNAPSHOT}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    np.save(staging / "vectors.npy", vectors.astype(np.float32))
    state = {"embedder_name": meta["embedder_name"], "embedder_sha256": meta["embedder_sha256"],
             "dim": int(meta["dim"]), "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "keys": keys}
    (staging / "state.json").write_text(json.dumps(state), encoding="utf-8")
    old = folder / f".{SNAPSHOT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if (folder / SNAPSHOT).exists():
        (folder / SNAPSHOT).rename(old)
    staging.rename(folder / SNAPSHOT)
    shutil.rmtree(old, ignore_errors=True)


def switch_embedder(settings, name: str, target: str, cache: dict[str, np.ndarray] | None = None,
                    on_event: Callable[[dict], None] = lambda e: None, check: bool = True) -> SwitchResult:
    """Re-embed collection `name` with model `target` (vectors found in `cache` by text hash are reused)."""
    from ..embed import load_active_embedder
    from ..runtime import embedder_id, open_collection

    collection, current = open_collection(settings, name)
    target_embedder = load_active_embedder(settings, target)
    reused = 0
    with collection:
        collection.acquire_write_lock()
        previous = collection.embedder_name
        folder = collection.folder

        def embed(texts: list[str]) -> np.ndarray:
            nonlocal reused
            keys = [text_key(t) for t in texts]
            out = np.zeros((len(texts), target_embedder.dim), np.float32)
            missing = [i for i, k in enumerate(keys) if cache is None or k not in cache]
            for i, k in enumerate(keys):
                if cache is not None and k in cache:
                    out[i] = cache[k]
            reused = len(texts) - len(missing)
            on_event({"event": "embed", "total": len(missing), "reused": reused})
            if missing:
                done = [0]

                def progress(n: int) -> None:
                    done[0] += n
                    on_event({"event": "embed_progress", "done": done[0], "total": len(missing)})

                out[missing] = target_embedder.embed([texts[i] for i in missing], progress)
            # The old vectors, in the same (text id) order replace_all_embeddings read the texts in.
            ids = collection_text_ids(collection)
            if len(ids) != len(texts):
                raise CollectionError(f"collection {name!r} changed while re-embedding; run it again")
            _write_snapshot(folder, collection.meta(), keys, collection.embeddings(ids))
            on_event({"event": "commit"})
            return out

        collection.replace_all_embeddings(embedder_id(settings, target_embedder), embed)
        texts = collection.counts()["texts"]
    problems = verify_switch(settings, name, target) if check else []
    with open(folder / HISTORY, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "from": previous,
                             "to": target, "texts": texts, "problems": problems}) + "\n")
    return SwitchResult(name, previous, target, texts, reused, problems)


def collection_text_ids(collection: Collection) -> list[int]:
    return [r[0] for r in collection.indexed_texts()]


def verify_switch(settings, name: str, expected: str) -> list[str]:
    """Reopen as every command does and check: the recorded embedder, the integrity check, a search answers."""
    from ..retrieve import Retriever
    from ..runtime import open_collection

    collection, embedder = open_collection(settings, name)
    with collection:
        problems = list(collection.problems())
        if embedder.name != expected:
            problems.append(f"collection opens with {embedder.name}, expected {expected}")
        hits = collection.all_hits()[:1]
        if hits:
            found = Retriever.from_settings(collection, embedder, settings).search(hits[0].text[:200], k=3,
                                                                                   mode="dense")
            if hits[0].text_id not in {h.text_id for h in found}:
                problems.append("a chunk's own text does not find it in dense search")
    return problems


def promote(settings, name: str, candidate: str, cache: dict[str, np.ndarray] | None = None,
            on_event: Callable[[dict], None] = lambda e: None) -> SwitchResult:
    """Switch collection `name` to `candidate`; if the switched collection fails its check, switch back."""
    result = switch_embedder(settings, name, candidate, cache, on_event)
    if result.problems:
        back = rollback(settings, name, on_event)
        raise CollectionError(f"promotion of {candidate} to {name!r} failed its check ({'; '.join(result.problems)}); "
                              f"rolled back to {back.current}")
    return result


def rollback(settings, name: str, on_event: Callable[[dict], None] = lambda e: None) -> SwitchResult:
    """Return collection `name` to the embedder it had before the last switch (its stored vectors reused)."""
    from ..store.collection import collection_dir

    from ..models import ModelStore

    state, cache = read_snapshot(collection_dir(settings.collections_dir, name))
    manifest = ModelStore(settings.models_dir).get(state["embedder_name"])
    main = next((f for f in manifest.files if f.path == manifest.main_file), None)
    if main is None or main.sha256 != state["embedder_sha256"]:
        cache = None  # the model under that name changed since: its old vectors are not its vectors now
    return switch_embedder(settings, name, state["embedder_name"], cache, on_event)
