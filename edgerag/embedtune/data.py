"""`edgerag embedder data`: pseudo-queries over a collection, each with candidates ranked by the hybrid retriever.

Why this recipe (seed abstracts, DESIGN.md): plain contrastive tuning on corpus-generated queries often *lowers* a
good embedder; listwise distillation from a stronger ranker with mixed query types helps. Our stronger ranker is
hybrid search (dense + BM25, RRF), which beats dense alone on every BEIR set measured here.

First every distinct title/heading gives one title query (`titles_first`: titles are the pseudo-queries closest
to what people type; the other types are mostly lexical lookups, see `synthesize`), then, per chunk, round-robin
over the other query types until `max_queries` (one home for each):
- claim: one sentence of the chunk; the training passage is the chunk *without* it (inverse cloze task), so the
  student learns what a sentence is about, not string overlap;
- question: the local generator's question for a span (time-boxed, the finetune synthesis' filters), else a cloze
  question made from the sentence (the same functions `finetune data` uses);
- keywords: 3-4 salient terms of the chunk by tf·idf over the collection (terms of one chunk only are skipped: a
  query BM25 answers by one rare word teaches nothing);
- title: the heading of the first chunk under it (document title for records); the training passage drops it,
  and so do the query's negatives, so that no passage is told apart by its form.
Candidates: the current hybrid retriever's top `depth` for the query. The teacher score of a candidate is its RRF
fused score divided by the best one (1.0); the source chunk is the known positive and gets 1.0 whether or not
hybrid found it. For a title query the source document's other chunks are never candidates, so the teacher's
ranking of the negatives is its judgement of which *other* documents share the topic. False negatives: a candidate
that contains the query sentence, shares the source's heading in the same document, or overlaps the source by half
its word 5-grams (chunk overlap, near-copies) is never a negative.
Split by document: every n-th document's queries are held out for the gate (claims excluded there: the sentence
is verbatim in the indexed chunk, a test both embedders pass). data_card.json is written last (completion mark).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BadInputError
from ..fileio import write_text_atomic
from ..finetune.questions import cloze_question, generator_question, pick_span, question_problem, sentences_of
from ..store.collection import indexed_text
from ..text import STOPWORDS, words
from . import MAX_QUERIES, NEGATIVES, QUERY_TYPES

MIN_PASSAGE_WORDS = 12  # a claim's chunk must keep this much after the claim is cut out


@dataclass
class EmbedDataConfig:
    collection: str
    out_dir: Path
    max_queries: int = MAX_QUERIES  # CPU budget: one query is one listwise example of 1 + negatives passages
    per_chunk: int = 3  # rounds over the chunks (small collections get several queries per chunk)
    negatives: int = NEGATIVES  # candidates per example besides the positive
    titles_first: bool = True  # one title query per title/heading before the other types (see synthesize)
    depth: int = 30  # hybrid candidates looked at per query
    types: tuple[str, ...] = QUERY_TYPES
    heldout_every: int = 10  # every n-th document (shuffled) is held out for the gate
    generator_seconds: float = 0.0  # time box for generator questions (0: cloze questions only)
    keyword_terms: int = 4
    seed: int = 0

    def __post_init__(self):
        bad = [t for t in self.types if t not in QUERY_TYPES]
        if bad or not self.types:
            raise BadInputError(f"unknown query type(s) {bad or self.types} (choose from {', '.join(QUERY_TYPES)})")
        if self.negatives < 1 or self.depth <= self.negatives or self.max_queries < 1:
            raise BadInputError("need max_queries >= 1, negatives >= 1 and depth > negatives")


@dataclass
class EmbedDataCard:
    config: dict
    chunks: int = 0
    documents: int = 0
    examples: dict = field(default_factory=dict)  # train / heldout -> count
    by_type: dict = field(default_factory=dict)  # split/type -> count
    question_sources: dict = field(default_factory=dict)  # generator / cloze
    positive_found_by_teacher: float = 0.0  # share of queries whose source is in the hybrid top `depth`
    positive_rank1: float = 0.0  # share where it is hybrid's first hit
    false_negatives_dropped: int = 0
    rejections: dict = field(default_factory=dict)
    teacher: str = "hybrid RRF (dense + BM25) fused score / best fused score; the source chunk = 1.0"
    seconds: float = 0.0
    sha256: str = ""


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    toks = words(text)
    return {tuple(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))}


def near_duplicate(a: set, b: set, threshold: float = 0.5) -> bool:
    """Half of either text's word 5-grams occur in the other (chunk overlap, copied paragraphs)."""
    if not a or not b:
        return False
    common = len(a & b)
    return common >= threshold * min(len(a), len(b))


class _Idf:
    def __init__(self, texts: list[str]):
        self.df: Counter = Counter()
        for t in texts:
            self.df.update({w for w in words(t) if _term(w)})
        self.n = max(1, len(texts))

    def keywords(self, text: str, k: int, rng: random.Random) -> str | None:
        tf = Counter(w for w in words(text) if _term(w) and self.df[w] >= 2)
        ranked = sorted(tf, key=lambda w: -(1 + math.log(tf[w])) * math.log(self.n / self.df[w]))[: 2 * k]
        if len(ranked) < 3:
            return None
        picked = rng.sample(ranked, min(k, len(ranked)))
        return " ".join(sorted(picked, key=ranked.index))


def _term(w: str) -> bool:
    return w not in STOPWORDS and len(w) > 2 and not w.isdigit()


def _cut(text: str, sentence: str) -> str:
    return re.sub(r"[ \t]{2,}", " ", text.replace(sentence, "")).strip()


def title_and_body(hit) -> tuple[str, str]:
    """(title, the chunk without it): the heading of a file's section, else the chunk's first line when it is a
    short line of its own (records and plain text put the title there); ("", text) when there is neither."""
    if (hit.heading or "").strip():
        return hit.heading.strip(), hit.text
    first, sep, rest = hit.text.partition("\n\n")
    if sep and "\n" not in first and len(first.split()) <= 25:
        return first.strip(), rest
    return "", hit.text


def make_query(kind: str, hit, idf: _Idf, rng: random.Random, ask=None,
               terms: int = 4) -> tuple[str, str, str, str] | None:
    """(query, training passage, sentence the query came from or "", origin) or None when this chunk cannot
    give this type. `ask(sentence, span)` returns a generator question or None."""
    if kind == "title":
        heading, body = title_and_body(hit)
        if len(heading.split()) < 3 or len(body.split()) < MIN_PASSAGE_WORDS:
            return None
        return heading, body, "", "title"
    if kind == "keywords":
        query = idf.keywords(hit.text, terms, rng)
        return (query, indexed_text(hit.heading, hit.text), "", "keywords") if query else None
    sentences = sentences_of(hit.text)
    rng.shuffle(sentences)
    for sentence in sentences:
        if kind == "claim":
            rest = _cut(hit.text, sentence)
            if len(rest.split()) >= MIN_PASSAGE_WORDS:
                return sentence, indexed_text(hit.heading, rest), sentence, "claim"
            continue
        span = pick_span(sentence, rng)
        if not span:
            continue
        asked = ask(sentence, span) if ask else None
        if asked:
            return asked, indexed_text(hit.heading, hit.text), sentence, "generator"
        cloze = cloze_question(sentence, span)
        if span.lower() not in cloze.lower():
            return cloze, indexed_text(hit.heading, hit.text), sentence, "cloze"
    return None


def synthesize(collection, retriever, config: EmbedDataConfig, generator=None,
               on_event: Callable[[dict], None] = lambda e: None) -> EmbedDataCard:
    """Write train.jsonl, heldout.jsonl and data_card.json (last) into config.out_dir."""
    started = time.perf_counter()
    rng = random.Random(config.seed)
    hits = collection.all_hits()
    if len(hits) <= config.negatives:
        raise BadInputError(f"collection {collection.name!r} has {len(hits)} chunks; adapting the embedder needs "
                            f"more than {config.negatives} (the negatives per query)")
    by_id = {h.text_id: h for h in hits}
    shingles = {h.text_id: _shingles(h.text) for h in hits}
    idf = _Idf([h.text for h in hits])
    docs = sorted({h.doc_id for h in hits})
    rng.shuffle(docs)
    heldout_docs = {d for i, d in enumerate(docs) if i % config.heldout_every == config.heldout_every - 1} \
        if len(docs) >= config.heldout_every else set()
    order = hits[:]
    rng.shuffle(order)

    gen_budget = {"spent": 0.0, "tries": 0, "ok": 0}

    def ask(sentence: str, span: str) -> str | None:
        if generator is None or gen_budget["spent"] >= config.generator_seconds:
            return None
        t0 = time.perf_counter()
        asked = generator_question(generator, sentence, span)
        gen_budget["spent"] += time.perf_counter() - t0
        gen_budget["tries"] += 1
        if question_problem(asked, span, sentence):
            return None
        gen_budget["ok"] += 1
        return asked

    card = EmbedDataCard(config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
                         chunks=len(hits), documents=len(docs))
    rejections, by_type, sources = Counter(), Counter(), Counter()
    found = rank1 = 0
    seen: set[str] = set()
    out: dict[str, list] = {"train": [], "heldout": []}
    types = list(config.types)
    rounds = [(r, i, hit) for r in range(config.per_chunk) for i, hit in enumerate(order)]
    if config.titles_first and "title" in types:
        # Titles are the least lexical pseudo-queries and the closest to what people type (measured on NFCorpus,
        # bench/pseudo_query_legs.py: BM25 finds a claim's, cloze question's or keyword query's source at MRR
        # 0.97-0.99, so those mostly teach string overlap; title-only data lifted dense nDCG@10 by 1.0, the mix
        # lowered it). So every distinct title gets its query first; the other types fill the rest of the budget.
        types.remove("title")
        # Each title's query from the first chunk under it (a file's heading is on every chunk of its section, and
        # a section's opening is what its title describes), documents in shuffled order.
        rank = {d: n for n, d in enumerate(docs)}
        titled = sorted(order, key=lambda h: (rank[h.doc_id], h.text_id))
        rounds = [(-1, i, hit) for i, hit in enumerate(titled)] + (rounds if types else [])
    for r, i, hit in rounds:
        if len(out["train"]) + len(out["heldout"]) >= config.max_queries:
            break
        split = "heldout" if hit.doc_id in heldout_docs else "train"
        made = None
        # the titles pass (r = -1), else round-robin: this chunk's turn type first, then the others
        for kind in ["title"] if r < 0 else [types[(i + r + j) % len(types)] for j in range(len(types))]:
            if split == "heldout" and kind == "claim":
                continue
            made = make_query(kind, hit, idf, rng, ask if kind == "question" else None, config.keyword_terms)
            if made:
                break
        if not made:
            if r >= 0:  # a chunk without a title in the titles pass still has its turn in the mix
                rejections["no query of any type"] += 1
            continue
        query, passage, sentence, origin = made
        key = " ".join(words(query))
        if key in seen:
            rejections["duplicate query"] += 1
            continue
        seen.add(key)
        ranked = retriever.search(query, k=config.depth, mode="hybrid")
        fused = {h.text_id: h.score for h in ranked}
        if hit.text_id in fused:
            found += 1
            rank1 += ranked[0].text_id == hit.text_id
        best = max(fused.values(), default=1.0) or 1.0

        def false_negative(tid: int) -> bool:
            other = by_id.get(tid)
            if other is None:
                return True
            if sentence and " ".join(sentence.split()) in " ".join(other.text.split()):
                return True
            if origin == "title" and other.doc_id == hit.doc_id:  # a title describes its whole document
                return True
            return near_duplicate(shingles[hit.text_id], shingles[tid])

        negatives, relevant = [], [hit.text_id]
        for h in ranked:
            if h.text_id == hit.text_id:
                continue
            if false_negative(h.text_id):
                card.false_negatives_dropped += 1
                relevant.append(h.text_id)
                continue
            negatives.append((h.text_id, h.score / best))
        if len(negatives) < config.negatives:
            rejections["too few negatives after false-negative removal"] += 1
            continue
        # The top half of the teacher's list (the hard part of the ranking) plus a sample of the rest, so the
        # student sees the whole shape of the teacher's distribution, not only near-ties.
        top = config.negatives // 2 + 1
        chosen = negatives[:top] + sorted(rng.sample(negatives[top:], config.negatives - top), key=lambda x: -x[1])
        example = {"query": query, "type": origin if origin not in ("cloze", "generator") else "question",
                   "origin": origin, "text_id": hit.text_id, "doc_id": hit.doc_id, "relevant": relevant,
                   "positive": passage,
                   "negatives": [negative_text(by_id[t], origin) for t, _ in chosen],
                   "negative_ids": [t for t, _ in chosen],
                   "teacher": [1.0] + [round(s, 6) for _, s in chosen]}
        out[split].append(example)
        by_type[f"{split}/{example['type']}"] += 1
        sources[origin] += 1
        on_event({"event": "query", "done": len(out["train"]) + len(out["heldout"]), "total": config.max_queries})

    if not out["train"]:
        raise BadInputError(f"collection {collection.name!r}: no training query could be made "
                            f"(rejections: {dict(rejections)})")
    n = len(out["train"]) + len(out["heldout"])
    card.examples = {k: len(v) for k, v in out.items()}
    card.by_type = dict(sorted(by_type.items()))
    card.question_sources = dict(sources)
    if gen_budget["tries"]:
        card.question_sources["generator_acceptance"] = round(gen_budget["ok"] / gen_budget["tries"], 3)
    card.positive_found_by_teacher = round(found / n, 4)
    card.positive_rank1 = round(rank1 / n, 4)
    card.rejections = dict(rejections.most_common())
    write_data(config.out_dir, out, card, started)
    return card


def negative_text(hit, origin: str) -> str:
    """A negative in the form of its example's positive. A title query's positive is its chunk without the title
    (else the title is found verbatim), so its negatives lose theirs too: with titles on the negatives only, the
    student learned "a passage that begins with a title line is wrong", and on a collection ingested from Markdown
    files, where every chunk carries its document's heading, adaptation lowered dense nDCG@10 by 5.5 on NFCorpus
    (docs/results/embedder-adapt/embedder-run-nfcorpus-md)."""
    return title_and_body(hit)[1] if origin == "title" else indexed_text(hit.heading, hit.text)


def write_data(out_dir: Path, out: dict[str, list], card: EmbedDataCard, started: float) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "data_card.json").unlink(missing_ok=True)  # the card marks a complete folder: last to go in
    digest = hashlib.sha256()
    for split, items in out.items():
        text = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items)
        digest.update(text.encode("utf-8"))
        write_text_atomic(out_dir / f"{split}.jsonl", text)
    card.sha256 = digest.hexdigest()
    card.seconds = round(time.perf_counter() - started, 1)
    write_text_atomic(out_dir / "data_card.json", json.dumps(asdict(card), indent=2) + "\n")


def read_examples(path: Path) -> list[dict]:
    if not path.is_file():
        raise BadInputError(f"{path}: no such data file (run `edgerag embedder data` first)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                row["query"], row["positive"], row["negatives"], row["teacher"]  # noqa: B018  (shape check)
            except (ValueError, KeyError, TypeError) as exc:
                raise BadInputError(f"{path}:{n}: not an embedder training example ({exc})") from exc
            rows.append(row)
    return rows


def load_card(data_dir: Path) -> dict:
    path = Path(data_dir) / "data_card.json"
    if not path.is_file():
        raise BadInputError(f"{data_dir}: no data_card.json (the data step did not finish; run it again)")
    return json.loads(path.read_text(encoding="utf-8"))
