"""`edgerag finetune data`: training examples synthesized from a collection by the local generator.

Recipe (RAFT, Zhang et al. 2024; ALoFTRAG; Finetune-RAG), adapted to a 135M generator that writes weak free-form
questions:
1. Sample chunks round-robin across documents (diversity), in a seeded random order.
2. Pick an answer span in the chunk extractively (a number/date, a capitalised name, or a short noun phrase
   ending a sentence); ask the generator to write a question whose answer is that span (answer-aware question
   generation is much easier for a small model than open question writing). If its question fails the filters,
   fall back to a cloze question made from the sentence itself (span → "what"), which is always grounded.
3. Filters, each counted in the data card: the span must be in the chunk (quote check); the question must look like
   a question, not contain the answer, and not be a duplicate; and it must retrieve its own chunk in the top-k
   (round-trip filter) — a question retrieval cannot answer teaches nothing at run time.
4. Each example is a chat in exactly the runtime prompt format: k numbered sources, the oracle chunk among retrieved
   distractors with probability p_oracle (else only distractors), and the target "<span> [n]" or the not-found
   answer.
5. Train/validation split by document, so validation questions come from documents training never saw.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BadInputError
from ..generate.prompts import NOT_FOUND, messages_for

MIN_CHUNKS = 8


@dataclass
class DataConfig:
    collection: str
    out_dir: Path
    max_examples: int = 300
    k_sources: int = 4  # sources per prompt, as `ask` gives (settings.top_k)
    p_oracle: float = 0.8  # share of examples whose sources include the chunk that answers
    roundtrip_k: int = 5
    val_fraction: float = 0.15  # of documents
    use_generator: bool = True  # False: cloze questions only (fast, deterministic; used by tests)
    seed: int = 0


@dataclass
class DataCard:
    config: dict
    chunks_sampled: int = 0
    examples: dict = field(default_factory=dict)  # split -> count
    with_oracle: int = 0
    question_sources: dict = field(default_factory=dict)  # generator / cloze -> accepted count
    generator_acceptance: float = 0.0
    rejections: dict = field(default_factory=dict)  # reason -> count
    filters: list[str] = field(default_factory=lambda: [
        "answer span must occur verbatim in the chunk (quote check)",
        "question: 4-40 words, ends with '?', does not contain the answer",
        "round-trip: the question retrieves its own chunk in the top-k",
        "no duplicate questions (normalised)",
    ])
    sha256: str = ""


@dataclass
class Candidate:
    text_id: int
    doc_id: int
    chunk: str
    sentence: str
    span: str


_NUMBERISH = re.compile(r"\b(?:\d[\d,.]*(?:\s?(?:%|percent|metres|meters|km|miles|years?|days?|hours?|minutes?|"
                        r"grams?|kg|euros?|dollars?|million|billion|nautical miles))?)\b")
_NAME = re.compile(r"\b(?:[A-Z][a-z]+(?:\s+(?:of|the|de|von)?\s*[A-Z][a-z]+)+)\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def pick_span(chunk: str, rng: random.Random) -> tuple[str, str] | None:
    """(sentence, span): a short answer span in one sentence of the chunk, preferring numbers and names."""
    sentences = [s.strip() for s in _SENTENCE.split(chunk) if 6 <= len(s.split()) <= 60]
    rng.shuffle(sentences)
    for sentence in sentences:
        for pattern in (_NUMBERISH, _NAME):
            found = [m.group(0).strip(" ,.") for m in pattern.finditer(sentence)]
            found = [f for f in found if f and not sentence.startswith(f) and len(f) >= 2]
            if found:
                return sentence, rng.choice(found)
    for sentence in sentences:  # last resort: the sentence's final few words
        words = sentence.rstrip(".!?").split()
        if len(words) >= 8:
            return sentence, " ".join(words[-3:])
    return None


def cloze_question(sentence: str, span: str) -> str:
    asked = "when" if re.fullmatch(r"\d{3,4}", span) else ("how many" if span[:1].isdigit() else "what")
    body = sentence.rstrip(" .!?").replace(span, asked, 1)
    return body[:1].upper() + body[1:] + "?"


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


_NUMBER_CUES = ("how", "when", "year", "number", "percent", "score", "date", "amount", "price", "age", "many", "much")


def question_problem(question: str, span: str, sentence: str = "") -> str | None:
    words = question.split()
    if not question.endswith("?"):
        return "not a question"
    if not 4 <= len(words) <= 40:
        return "question length"
    if _norm(span) and _norm(span) in _norm(question):
        return "question contains the answer"
    q = _norm(question)
    # The question must ask for the kind of thing the span is (a 135M model often asks about something else).
    if span[:1].isdigit() and not any(cue in q.split() for cue in _NUMBER_CUES):
        return "question does not ask for a number or date"
    if sentence:
        from ..generate.citations import content_words

        shared = set(content_words(question)) & set(content_words(sentence))
        if len(shared) < 2:
            return "question not grounded in the sentence"
    return None


# Two worked examples: measured on SmolLM2-135M, the zero-shot instruction produced almost no usable questions
# ("What is the answer to this question?"), the few-shot chat produces real ones.
QG_SHOTS = [
    {"role": "system", "content": "You turn a fact into a question."},
    {"role": "user", "content": "Fact: The Eiffel Tower was completed in 1889.\nAnswer: 1889"},
    {"role": "assistant", "content": "When was the Eiffel Tower completed?"},
    {"role": "user", "content": "Fact: Marie Curie discovered polonium with her husband Pierre.\nAnswer: Marie Curie"},
    {"role": "assistant", "content": "Who discovered polonium with her husband Pierre?"},
]


def generator_question(generator, sentence: str, span: str) -> str:
    messages = QG_SHOTS + [{"role": "user", "content": f"Fact: {sentence}\nAnswer: {span}"}]
    text = generator.chat(messages, max_tokens=48, temperature=0.2)
    first = text.strip().split("\n")[0].strip().strip('"')
    return first[: first.index("?") + 1] if "?" in first else first


def synthesize(collection, retriever, generator, config: DataConfig,
               on_event: Callable[[dict], None] = lambda e: None) -> DataCard:
    """Write train.jsonl, val.jsonl and data_card.json into config.out_dir; returns the card."""
    rng = random.Random(config.seed)
    rows = collection.conn.execute(
        "SELECT t.id, t.text, min(c.doc_id) AS doc FROM texts t JOIN chunks c ON c.text_id = t.id "
        "GROUP BY t.id").fetchall()
    if len(rows) < MIN_CHUNKS:
        raise BadInputError(f"collection {collection.name!r} has {len(rows)} usable chunks; synthetic data needs "
                            f"at least {MIN_CHUNKS} (ingest more documents)")
    by_doc: dict[int, list] = defaultdict(list)
    for row in rows:
        by_doc[row[2]].append(row)
    docs = sorted(by_doc)
    rng.shuffle(docs)
    for d in docs:
        rng.shuffle(by_doc[d])
    # Every n-th document (in the shuffled order) is held out, so both splits fill up as sampling proceeds.
    every = max(2, round(1 / config.val_fraction)) if config.val_fraction > 0 and len(docs) > 1 else 0
    val_docs = {d for i, d in enumerate(docs) if every and i % every == every - 1}
    order = [by_doc[d][i] for i in range(max(len(v) for v in by_doc.values())) for d in docs if i < len(by_doc[d])]

    card = DataCard(config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()})
    rejections: Counter = Counter()
    sources_used: Counter = Counter()
    generator_tries = 0
    seen_questions: set[str] = set()
    examples: dict[str, list] = {"train": [], "val": []}
    for row in order:
        if sum(len(v) for v in examples.values()) >= config.max_examples:
            break
        card.chunks_sampled += 1
        text_id, chunk, doc_id = row[0], row[1], row[2]
        picked = pick_span(chunk, rng)
        if not picked:
            rejections["no answer span in chunk"] += 1
            continue
        sentence, span = picked
        if span not in chunk:
            rejections["span not quoted from chunk"] += 1
            continue
        question, origin = None, None
        if config.use_generator and generator is not None:
            generator_tries += 1
            candidate = generator_question(generator, sentence, span)
            problem = question_problem(candidate, span, sentence)
            if problem:
                rejections[f"generator: {problem}"] += 1
            elif not _roundtrip(retriever, candidate, text_id, config.roundtrip_k):
                rejections["generator: round-trip retrieval failed"] += 1
            else:
                question, origin = candidate, "generator"
        if question is None:
            candidate = cloze_question(sentence, span)
            if question_problem(candidate, span) or not _roundtrip(retriever, candidate, text_id, config.roundtrip_k):
                rejections["cloze: round-trip retrieval failed"] += 1
                continue
            question, origin = candidate, "cloze"
        if _norm(question) in seen_questions:
            rejections["duplicate question"] += 1
            continue
        seen_questions.add(_norm(question))
        example = _example(retriever, question, span, text_id, config, rng)
        card.with_oracle += example["meta"]["oracle_position"] is not None
        sources_used[origin] += 1
        examples["val" if doc_id in val_docs else "train"].append(example)
        on_event({"event": "example", "done": sum(len(v) for v in examples.values()), "total": config.max_examples,
                  "origin": origin})

    config.out_dir.mkdir(parents=True, exist_ok=True)
    for split, items in examples.items():
        _write_atomic(config.out_dir / f"{split}.jsonl",
                      "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    heldout = heldout_squad(collection, val_docs, examples["val"])
    _write_atomic(config.out_dir / "heldout.json", json.dumps(heldout, ensure_ascii=False))
    card.examples = {k: len(v) for k, v in examples.items()}
    card.question_sources = dict(sources_used)
    card.generator_acceptance = round(sources_used["generator"] / generator_tries, 3) if generator_tries else 0.0
    card.rejections = dict(rejections)
    card.sha256 = hashlib.sha256(b"".join((config.out_dir / f"{s}.jsonl").read_bytes()
                                          for s in ("train", "val"))).hexdigest()
    # written last: its presence marks a complete data folder (a killed run redoes synthesis)
    _write_atomic(config.out_dir / "data_card.json", json.dumps(asdict(card), indent=2) + "\n")
    return card


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def heldout_squad(collection, val_docs: set[int], val_examples: list[dict]) -> dict:
    """The validation questions as a SQuAD v1.1 file for the A/B gate: every chunk of the held-out documents is a
    context (so retrieval has the same distractors a user's question meets), each question attached to its own."""
    ids = sorted(val_docs)
    rows = collection.conn.execute(
        f"SELECT DISTINCT t.id, t.text FROM texts t JOIN chunks c ON c.text_id = t.id "
        f"WHERE c.doc_id IN ({','.join('?' * len(ids))}) ORDER BY t.id", ids).fetchall() if ids else []
    questions: dict[int, list] = defaultdict(list)
    for n, ex in enumerate(val_examples):
        meta = ex["meta"]
        questions[meta["text_id"]].append({"id": f"val-{n}", "question": meta["question"],
                                           "answers": [{"text": meta["answer"]}]})
    paragraphs = [{"context": text, "qas": questions.get(text_id, [])} for text_id, text in rows]
    return {"version": "edgerag-heldout", "data": [{"title": "held-out documents", "paragraphs": paragraphs}]}


def _roundtrip(retriever, question: str, text_id: int, k: int) -> bool:
    return any(h.text_id == text_id for h in retriever.search(question, k, "hybrid"))


def _example(retriever, question: str, span: str, text_id: int, config: DataConfig, rng: random.Random) -> dict:
    hits = retriever.search(question, config.k_sources + 1, "hybrid")
    oracle = next((h for h in hits if h.text_id == text_id), None)
    distractors = [h for h in hits if h.text_id != text_id]
    include = oracle is not None and rng.random() < config.p_oracle
    if include:
        sources = distractors[: config.k_sources - 1]
        position = rng.randrange(len(sources) + 1)
        sources.insert(position, oracle)
        target = f"{span} [{position + 1}]"
    else:
        sources, position, target = distractors[: config.k_sources], None, NOT_FOUND
    prompt_sources = [h.source for h in sources]
    messages = messages_for(question, prompt_sources) + [{"role": "assistant", "content": target}]
    return {"messages": messages, "meta": {"text_id": text_id, "question": question, "answer": span,
                                           "oracle_position": position}}


def read_jsonl(path: Path) -> list[dict]:
    """User-written or synthesized chat examples; each line {"messages": [{role, content}, ...]}, last = assistant."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        messages = item.get("messages") if isinstance(item, dict) else None
        if (not isinstance(messages, list) or len(messages) < 2
                or any(not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant")
                       or not isinstance(m.get("content"), str) for m in messages)
                or messages[-1]["role"] != "assistant"):
            raise BadInputError(f"{path}:{number}: expected {{\"messages\": [{{\"role\", \"content\"}}, ...]}} "
                                "ending with an assistant message")
        out.append(item)
    if not out:
        raise BadInputError(f"{path}: no examples")
    return out
