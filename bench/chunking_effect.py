"""What a chunker change did to NFCorpus retrieval, paired and cheap: the chunker of an earlier commit vs today's on
the same scratch collection, re-embedding only the documents whose chunks differ.

1. Chunk all 3,633 NFCorpus documents with both chunkers (tokenizer only) and list those whose chunks differ.
2. Copy the eval collection made by `bench/eval_nfcorpus.py` (run that first), delete the differing documents in
   the copy and ingest them again with the old chunker; everything else (vectors, texts) stays identical.
3. nDCG@10 per mode on both collections, with how many of the 323 test queries changed.

Run: .venv/bin/python bench/chunking_effect.py REV   (e.g. d6660e9, where hybrid was 35.3)
"""

import argparse
import shutil
import statistics
import subprocess
import tempfile
import types
from pathlib import Path

from _common import DATA, REPO, bench_home, report


def old_chunker(rev: str):
    source = subprocess.run(["git", "show", f"{rev}:edgerag/ingest/chunker.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("old_chunker")  # its one relative import made absolute; nothing else changed
    exec(compile(source.replace("from ..store.collection import", "from edgerag.store.collection import"),
                 f"{rev}:chunker.py", "exec"), module.__dict__)
    return module.chunk_sections


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rev")
    args = parser.parse_args()
    bench_home()
    from edgerag.config import load_settings
    from edgerag.embed import load_active_embedder
    from edgerag.evaluate import metrics as M
    from edgerag.evaluate.corpus import eval_collections_dir, scratch_name
    from edgerag.evaluate.datasets import load_beir
    from edgerag.evaluate.retrieval import rank_documents
    from edgerag.ingest import sync
    from edgerag.ingest.chunker import chunk_sections
    from edgerag.ingest.loaders import Section
    from edgerag.retrieve import Retriever
    from edgerag.store.collection import Collection

    settings = load_settings()
    embedder = load_active_embedder(settings)
    data = load_beir(DATA / "retrieval" / "beir_nfcorpus" / "nfcorpus.zip", "test")
    old = old_chunker(args.rev)

    def chunks(fn, doc):
        return [(c.heading, c.text) for c in fn([Section(text=doc.full_text)], embedder.count_tokens_batch,
                                                settings.chunk_tokens, settings.chunk_overlap)]

    changed = [k for k, d in data.corpus.items() if chunks(old, d) != chunks(chunk_sections, d)]
    name = scratch_name(data.name, embedder.name, settings)
    source = eval_collections_dir(settings) / name
    if not source.is_dir():
        raise SystemExit(f"{source}: run bench/eval_nfcorpus.py first")
    root = Path(tempfile.mkdtemp(prefix="chunking-effect-"))
    try:
        shutil.copytree(source, root / "old", ignore=shutil.ignore_patterns("write.lock"))
        copy = Collection.open(root, "old")
        for key in changed:
            copy.delete_document(f"record://{key}")
        sync.chunk_sections = old  # sync_records chunks through this name
        try:
            redone = sync.sync_records(copy, embedder, [sync.Record(k, data.corpus[k].text, data.corpus[k].title)
                                                        for k in changed], settings.chunk_tokens,
                                       settings.chunk_overlap)
        finally:
            sync.chunk_sections = chunk_sections
        copy.close()
        collections = {"today's chunker": Collection.open(eval_collections_dir(settings), name),
                       f"{args.rev}'s chunker": Collection.open(root, "old")}
        scores = {}
        for label, col in collections.items():
            retriever = Retriever.from_settings(col, embedder, settings)
            for mode in ("bm25", "dense", "hybrid"):
                scores[label, mode] = {q: M.ndcg_at_k(rank_documents(retriever, text, mode), data.qrels[q], 10)
                                       for q, text in data.queries.items()}
            col.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    now, then = collections
    rows = [("documents whose chunks differ", f"{len(changed)} of {len(data.corpus)} "
                                              f"({redone.new_chunks} chunks embedded again)")]
    for mode in ("bm25", "dense", "hybrid"):
        a, b = scores[now, mode], scores[then, mode]
        moved = sum(abs(a[q] - b[q]) > 1e-9 for q in a)
        rows.append((f"{mode} nDCG@10", f"{now} {100 * statistics.mean(a.values()):.2f}, {then} "
                                        f"{100 * statistics.mean(b.values()):.2f} ({moved}/{len(a)} queries moved)"))
    report(f"NFCorpus: chunker of {args.rev} vs today's, paired", rows)


if __name__ == "__main__":
    main()
