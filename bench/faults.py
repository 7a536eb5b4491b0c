"""The fault suite: ingest fuzzing, kill -9 at random points, concurrent use, a clean-room install.

    python bench/faults.py all            # the full suite; prints the figures the README quotes
    python bench/faults.py fuzz|kill|finetune-kill|concurrency|cleanroom [--seeds N]

This module holds the harness, the kill and the concurrency scenarios; fault_fuzz.py the hostile files and the
fuzzing driver, fault_finetune.py kill -9 during `finetune train` / `finetune export`, fault_cleanroom.py the
clean-room install. The TUI beside CLI writers is tests/test_tui_concurrency.py (Textual pilot).

tests/test_faults.py runs a fast slice of the same scenarios on every `make test`; the `slow` tests there run them
whole. Storage, parsing and process death are under test, not embedding quality, so ingest here uses a
deterministic hashing embedder (HashEmbedder) instead of the ONNX model, except in the clean-room install, which
runs the real `edgerag` commands on the bundled models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edgerag.store.collection import Collection, EmbedderId, indexed_text  # noqa: E402

NAME = "faults"


class HashEmbedder:
    """A bag of hashed words as a unit vector: deterministic, instant, similar texts get similar vectors."""

    dim = 32

    def __init__(self, salt: str = "a"):
        self.salt = salt
        self.name = f"hash-embedder-{salt}"

    @property
    def id(self) -> EmbedderId:
        return EmbedderId(self.name, hashlib.sha256(self.name.encode()).hexdigest(), self.dim)

    def embed(self, texts, progress=None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()[:20000]):
                h = int.from_bytes(hashlib.blake2b((self.salt + word).encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 40) & 1 else -1.0
            out[i, 0] += 0.01  # never the zero vector
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        if progress:
            progress(len(texts))
        return out

    def count_tokens_batch(self, texts) -> list[int]:
        return [len(t.split()) + 1 for t in texts]


def open_collection(root: Path, embedder: HashEmbedder | None = None, create: bool = True) -> Collection:
    return Collection.open(root, NAME, embedder.id if embedder else None, create=create)


def ingest(root: Path, paths: list[Path], embedder: HashEmbedder | None = None, time_limit: float = 0,
           chunk_tokens: int = 60, overlap: int = 8):
    from edgerag.ingest.sync import sync

    embedder = embedder or HashEmbedder()
    with open_collection(root, embedder) as col:
        return sync(col, embedder, paths, chunk_tokens, overlap, file_time_limit=time_limit)


def state(root: Path, base: Path | None = None) -> dict:
    """What a user can observe: every document's chunks (as the document words them), paths relative to base."""
    with open_collection(root, create=False) as col:
        docs = {}
        for d in col.documents():
            key = str(Path(d.path).relative_to(base)) if base and d.path.startswith(str(base)) else d.path
            docs[key] = col.chunks_of(d.path)
        return {"documents": docs, "texts": col.counts()["texts"]}


def integrity(root: Path, embedder: HashEmbedder | None = None) -> list[str]:
    """Collection.problems() on a fresh open, plus a full comparison: every stored embedding is the embedder's
    vector of its text, and every vector the file serves is the stored one."""
    with open_collection(root, create=False) as col:
        out = col.problems()
        rows = col.conn.execute("SELECT id, heading, text FROM texts ORDER BY id").fetchall()
        if rows:
            ids = [r[0] for r in rows]
            stored = col.embeddings(ids)
            if embedder is not None:
                want = embedder.embed([indexed_text(r[1], r[2]) for r in rows])
                if not np.allclose(stored, want, atol=1e-5):
                    out.append("stored embeddings are not the active embedder's")
            served = np.asarray(col.vectors.index.get_items(ids), dtype=np.float32)
            unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
            if not np.allclose(served, unit, atol=1e-3):
                out.append("vector file serves other vectors than SQLite stores")
        return out


# -- corpora and edits -----------------------------------------------------------------------------------------
def corpus(folder: Path, n: int = 60, seed: int = 0) -> Path:
    """n XQuAD paragraphs as .txt files plus Markdown files with headings (docs/samples and generated)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.loads((DATA / "qa" / "xquad_en" / "xquad.en.json").read_text(encoding="utf-8"))
    paragraphs = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    for i, text in enumerate(paragraphs[:n]):
        (folder / f"p{i:03d}.txt").write_text(text, encoding="utf-8")
    for sample in (REPO / "docs" / "samples").iterdir():
        shutil.copy(sample, folder / sample.name)
    rng = random.Random(seed)
    for i in range(max(2, n // 20)):
        parts = rng.sample(paragraphs[n:n + 40], 3)
        (folder / f"guide{i}.md").write_text(
            "".join(f"# Part {j}\n\n{p}\n\n" for j, p in enumerate(parts)), encoding="utf-8")
    return folder


def edit(folder: Path, seed: int) -> None:
    """Ordinary edits in one go: change words, delete, rename, and move/split/merge paragraphs between files."""
    rng = random.Random(seed)
    files = sorted(folder.glob("p*.txt"))
    rng.shuffle(files)
    k = max(1, len(files) // 10)
    changed, deleted, renamed, movers = files[:k], files[k:2 * k], files[2 * k:3 * k], files[3 * k:5 * k]
    for f in changed:
        words = f.read_text(encoding="utf-8").split(" ")
        words[rng.randrange(len(words))] = "zanzibar"
        f.write_text(" ".join(words), encoding="utf-8")
    for f in deleted:
        f.unlink()
    for f in renamed:
        f.rename(f.with_name("renamed-" + f.name))
    # move: the text of one file goes (whole, split or merged) into files sorting before and after it
    for a, b in zip(movers[::2], movers[1::2]):
        text_a, text_b = a.read_text(encoding="utf-8"), b.read_text(encoding="utf-8")
        how = rng.choice(["merge", "split", "swap"])
        if how == "merge":
            (folder / f"a-merged-{a.stem}.txt").write_text(text_a + "\n\n" + text_b, encoding="utf-8")
            a.unlink(), b.unlink()
        elif how == "split":
            half = len(text_a) // 2
            (folder / f"z-split-{a.stem}.txt").write_text(text_a[half:], encoding="utf-8")
            a.write_text(text_a[:half], encoding="utf-8")
        else:
            a.write_text(text_b, encoding="utf-8")
            b.write_text(text_a, encoding="utf-8")
    for i in range(k):
        (folder / f"new{seed}-{i}.txt").write_text(f"A new note number {i} about lighthouses and tide tables.",
                                                    encoding="utf-8")


# -- the child process (killed, or run beside another) -----------------------------------------------------------
def child(args) -> int:
    """Run one ingest or reindex; print 'ready' once the write lock is held. --kill-at POINT:N kills this process
    (SIGKILL) right after the N-th SQLite commit ('commit') or before the N-th vector-file save ('save')."""
    from edgerag.errors import EdgeragError
    from edgerag.ingest import sync as sync_module
    from edgerag.store.vectors import HnswVectors

    sync_module.EMBED_BATCH_CHUNKS, sync_module.SAVE_EVERY_TEXTS = 8, 24  # many commits and saves per run
    if args.kill_at:
        point, n = args.kill_at.split(":")
        count = {"n": 0}

        def tick():
            count["n"] += 1
            if count["n"] == int(n):
                os.kill(os.getpid(), signal.SIGKILL)

        if point == "commit":
            original = Collection._txn

            def _txn(self):
                inner = original(self)

                class Wrapped:
                    def __enter__(self_inner):
                        return inner.__enter__()

                    def __exit__(self_inner, exc_type, *rest):
                        result = inner.__exit__(exc_type, *rest)
                        if exc_type is None:
                            tick()
                        return result
                return Wrapped()
            Collection._txn = _txn
        else:
            save = HnswVectors.save

            def killing_save(self):
                if self.dirty:
                    tick()
                save(self)
            HnswVectors.save = killing_save
    if args.slow:
        embed = HashEmbedder.embed

        def slow_embed(self, texts, progress=None):
            time.sleep(args.slow)
            return embed(self, texts, progress)
        HashEmbedder.embed = slow_embed
    root, embedder = Path(args.root), HashEmbedder(args.embedder)
    try:
        if args.action == "reindex":
            with open_collection(root, create=False) as col:
                col.acquire_write_lock()
                print("ready", flush=True)
                col.replace_all_embeddings(embedder.id, embedder.embed)
        else:
            from edgerag.ingest.sync import sync

            with open_collection(root, embedder) as col:
                col.acquire_write_lock()
                print("ready", flush=True)
                sync(col, embedder, [Path(args.folder)], 60, 8)
    except EdgeragError as exc:
        print(f"refused: {exc}", flush=True)
        return 1
    print("done", flush=True)
    return 0


def spawn(root: Path, action: str, folder: Path | None = None, embedder: str = "a", kill_at: str | None = None,
          slow: float = 0.0) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "child", "--root", str(root), "--action", action,
           "--embedder", embedder] + (["--folder", str(folder)] if folder else []) + \
          (["--kill-at", kill_at] if kill_at else []) + (["--slow", str(slow)] if slow else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def wait_ready(proc: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith(("ready", "refused", "done")):
            return line.strip()
    return line.strip()


# -- 2. kill -9 at random points -------------------------------------------------------------------------------------
def _reindex(root: Path, embedder: HashEmbedder) -> None:
    with open_collection(root, create=False) as col:
        col.replace_all_embeddings(embedder.id, embedder.embed)


def _meta_embedder(root: Path) -> HashEmbedder:
    with open_collection(root, create=False) as col:
        return HashEmbedder(col.meta()["embedder_name"].removeprefix("hash-embedder-"))


def kill_once(work: Path, scenario: str, seed: int, n_files: int = 60, durations: dict | None = None) -> dict:
    """One seed of one scenario: build the start state, kill a child doing the work, check the collection,
    finish with an uninterrupted run and compare with a reference that was never killed."""
    rng = random.Random(seed)
    base = work / f"{scenario}-{seed}"
    shutil.rmtree(base, ignore_errors=True)
    folder = corpus(base / "docs", n_files, seed)
    root, ref = base / "data", base / "ref"
    if scenario != "ingest":
        ingest(root, [folder])
    if scenario == "reingest":
        edit(folder, seed)
    before = state(root, folder)["documents"] if root.exists() else {}
    if root.exists():
        shutil.copytree(root, ref)
    final_embedder = HashEmbedder("b" if scenario == "reindex" else "a")
    _reindex(ref, final_embedder) if scenario == "reindex" else ingest(ref, [folder])

    mode = ("time", "commit", "save")[seed % 3]
    # reindex commits once and saves once; an ingest of this corpus commits and saves dozens of times
    kill_at = None if mode == "time" else f"{mode}:{1 if scenario == 'reindex' else rng.randint(1, 12)}"
    action = "reindex" if scenario == "reindex" else "ingest"
    durations = durations if durations is not None else {}
    if mode == "time" and scenario not in durations:  # how long the child's work takes, unkilled
        probe = base / "probe"
        if root.exists():
            shutil.copytree(root, probe)
        started = time.perf_counter()
        p = spawn(probe, action, folder, final_embedder.salt, slow=0.01)
        wait_ready(p)
        started = time.perf_counter()
        p.communicate(timeout=300)
        durations[scenario] = time.perf_counter() - started
        shutil.rmtree(probe, ignore_errors=True)
    proc = spawn(root, action, folder, final_embedder.salt, kill_at=kill_at, slow=0.01)
    first = wait_ready(proc)
    if mode == "time" and first == "ready":
        time.sleep(rng.uniform(0, durations[scenario]))
        proc.kill()
    proc.communicate(timeout=300)
    killed = proc.returncode == -signal.SIGKILL

    # right after the kill: consistent, and nothing that was committed and is still on disk has gone
    problems = integrity(root, _meta_embedder(root)) if (root / NAME).exists() else []
    after_kill = state(root, folder)["documents"] if (root / NAME).exists() else {}
    lost = [p for p in before if (folder / p).exists() and p not in after_kill]
    # the next run completes to the reference state
    _reindex(root, final_embedder) if scenario == "reindex" else ingest(root, [folder])
    final_problems = integrity(root, final_embedder)
    got, want = state(root, folder), state(ref, folder)
    missing = sorted(set(want["documents"]) - set(got["documents"]))
    extra = sorted(set(got["documents"]) - set(want["documents"]))
    differing = sorted(p for p in set(got["documents"]) & set(want["documents"])
                       if got["documents"][p] != want["documents"][p])
    shutil.rmtree(base, ignore_errors=True)
    return {"scenario": scenario, "seed": seed, "mode": mode, "kill_at": kill_at, "killed": killed,
            "corrupt": problems + final_problems, "lost": lost + missing, "duplicated_or_wrong": extra + differing,
            "texts": (got["texts"], want["texts"])}


def kills(work: Path, seeds: int = 20, n_files: int = 60, scenarios=("ingest", "reingest", "reindex")) -> dict:
    durations: dict = {}
    runs = [kill_once(work, s, seed, n_files, durations) for s in scenarios for seed in range(seeds)]
    return {"runs": len(runs), "killed": sum(r["killed"] for r in runs),
            "corrupt_stores": sum(bool(r["corrupt"]) for r in runs),
            "lost_documents": sum(len(r["lost"]) for r in runs),
            "duplicated_or_wrong": sum(len(r["duplicated_or_wrong"]) for r in runs),
            "text_count_mismatch": sum(r["texts"][0] != r["texts"][1] for r in runs),
            "bad": [r for r in runs if r["corrupt"] or r["lost"] or r["duplicated_or_wrong"]]}


# -- 3. concurrent use -----------------------------------------------------------------------------------------------
def concurrency(work: Path) -> dict:
    """Each scenario either serialises or refuses with a clear message; never a corrupt collection."""
    from edgerag.errors import CollectionError
    from edgerag.ingest.sync import sync
    from edgerag.store.collection import remove_collection

    shutil.rmtree(work, ignore_errors=True)
    folder, root = corpus(work / "docs", 80), work / "data"
    out: dict[str, dict] = {}
    busy = re.compile(r"being changed by another edgerag process \(pid \d+\)")

    # two ingest processes (the first slowed so that it is surely still running when the others start)
    a = spawn(root, "ingest", folder, slow=0.2)
    wait_ready(a)
    b = spawn(root, "ingest", folder)
    b_out, b_err = b.communicate(timeout=300)
    a.communicate(timeout=600)
    out["two ingests"] = {"held": bool(busy.search(b_out)) and a.returncode == 0 and not integrity(root),
                          "second": (b_out.strip() or b_err.strip()[-300:])[:300]}

    # ask (search) while an ingest writes: readers need no lock and always see a consistent snapshot
    edit(folder, 1)
    a = spawn(root, "ingest", folder, slow=0.05)
    wait_ready(a)
    queries, errors, q = 0, [], HashEmbedder().embed(["lighthouse keeper tide"])[0]
    while a.poll() is None:
        try:
            with open_collection(root, create=False) as col:
                hits = col.hits([t for t, _ in col.dense(q, 5)] + [t for t, _ in col.bm25("lighthouse", 5)])
                assert all(h.text for h in hits.values())
                queries += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")
    a.communicate()
    out["search during ingest"] = {"held": not errors and a.returncode == 0 and not integrity(root),
                                   "queries": queries, "errors": errors[:3]}

    # rm, reindex and a second in-process writer (the TUI's Library ingest) while a CLI ingest runs
    edit(folder, 2)
    a = spawn(root, "ingest", folder, slow=1.0)
    wait_ready(a)
    refused = {}
    for name, attempt in (
            ("rm --all", lambda: remove_collection(root, NAME)),
            ("reindex", lambda: _reindex(root, HashEmbedder("b"))),
            ("rm PATH", lambda: open_collection(root, create=False).delete_document(str(folder / "p001.txt"))),
            ("TUI ingest in-process", lambda: ingest(root, [folder]))):
        try:
            attempt()
            refused[name] = "ran"
        except CollectionError as exc:
            refused[name] = str(exc) if busy.search(str(exc)) else f"unclear: {exc}"
    a.communicate()
    out["writers during ingest"] = {"held": all(busy.search(v) for v in refused.values()) and a.returncode == 0
                                    and not integrity(root), "messages": refused}

    # two writers in one process (the TUI's Library screen saving while its worker ingests)
    first = open_collection(root, create=False)
    first.acquire_write_lock()
    try:
        with open_collection(root, create=False) as second:
            sync(second, HashEmbedder(), [folder], 60, 8)
        held = False
    except CollectionError as exc:
        held = bool(busy.search(str(exc)))
    finally:
        first.close()
    out["two writers, one process"] = {"held": held and not integrity(root)}
    return {"scenarios": len(out), "held": sum(v["held"] for v in out.values()), "detail": out}


# -- the command line ------------------------------------------------------------------------------------------------
def _documents() -> list[Path]:
    return [DATA / "documents" / "docling_testdata", DATA / "documents" / "unstructured_example_docs"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("all", "fuzz", "kill", "finetune-kill", "concurrency", "cleanroom"):
        p = sub.add_parser(name)
        p.add_argument("--seeds", type=int, default=20)
        p.add_argument("--files", type=int, default=60, help="corpus size for the kill scenarios")
        p.add_argument("--limit", type=float, default=30.0, help="per-file time limit (fuzzing)")
        p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgerag-faults")
        p.add_argument("--out", type=Path, help="write the figures as JSON here")
    p = sub.add_parser("child")
    p.add_argument("--root", required=True)
    p.add_argument("--action", choices=("ingest", "reindex"), required=True)
    p.add_argument("--folder")
    p.add_argument("--embedder", default="a")
    p.add_argument("--kill-at")
    p.add_argument("--slow", type=float, default=0.0)
    p = sub.add_parser("fuzz-child")
    p.add_argument("--files", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--limit", type=float, default=30.0)
    args = parser.parse_args(argv)
    from fault_cleanroom import cleanroom
    from fault_finetune import kills as finetune_kills
    from fault_fuzz import fuzz, fuzz_child, hostile_files

    if args.cmd == "child":
        return child(args)
    if args.cmd == "fuzz-child":
        return fuzz_child(args)

    figures: dict = {"machine": f"{os.cpu_count()} CPU cores"}
    work = args.work
    if args.cmd in ("all", "fuzz"):
        started = time.perf_counter()
        hostile = hostile_files(work / "hostile")
        figures["fuzz"] = fuzz(work / "fuzz", _documents() + [hostile], limit=args.limit)
        figures["fuzz"]["seconds"] = round(time.perf_counter() - started)
        _print("fuzz", figures["fuzz"], ("files_tried", "crashes", "stalls", "named_failures", "unnamed_failures",
                                         "time_limited", "slowest_s", "integrity", "seconds"))
    if args.cmd in ("all", "kill"):
        started = time.perf_counter()
        figures["kill"] = kills(work / "kill", args.seeds, args.files)
        figures["kill"]["seconds"] = round(time.perf_counter() - started)
        _print("kill -9", figures["kill"], ("runs", "killed", "corrupt_stores", "lost_documents",
                                            "duplicated_or_wrong", "text_count_mismatch", "seconds"))
    if args.cmd in ("all", "finetune-kill"):
        started = time.perf_counter()
        figures["finetune_kill"] = finetune_kills(work / "finetune", args.seeds)
        figures["finetune_kill"]["seconds"] = round(time.perf_counter() - started)
        _print("kill -9 during finetune train / export", figures["finetune_kill"],
               ("runs", "killed", "points", "corrupt_stores", "next_run_failed", "differs_from_uninterrupted",
                "seconds"))
    if args.cmd in ("all", "concurrency"):
        figures["concurrency"] = concurrency(work / "concurrency")
        _print("concurrency", figures["concurrency"], ("scenarios", "held"))
    if args.cmd in ("all", "cleanroom"):
        figures["cleanroom"] = cleanroom(work / "cleanroom")
        _print("clean-room install", figures["cleanroom"], ("held", "network_namespace", "steps",
                                                            "written_under_site_packages"))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    bad = (figures.get("fuzz", {}).get("crashes") or figures.get("fuzz", {}).get("stalls")
           or figures.get("kill", {}).get("bad") or figures.get("finetune_kill", {}).get("bad")
           or figures.get("concurrency", {}).get("held", 0) != figures.get("concurrency", {}).get("scenarios", 0)
           or not figures.get("cleanroom", {}).get("held", True))
    return 1 if bad else 0


def _print(title: str, data: dict, keys) -> None:
    print(f"== {title}")
    for k in keys:
        v = data.get(k)
        print(f"  {k}: {len(v) if isinstance(v, list) and k in ('crashes', 'stalls') else v}")
    for k in ("crashes", "stalls", "bad"):
        for item in (data.get(k) or [])[:10]:
            print(f"  ! {item}")


if __name__ == "__main__":
    sys.exit(main())
