"""`edgerag finetune data`: training examples synthesized from a collection, shaped like the answers we want.

Recipe (RAFT, Zhang et al. 2024; ALoFTRAG; robustness to irrelevant context), v2 after measuring v1 (bare "span [n]"
targets and 20% refusals taught a 135M model to answer in 2 words and refuse half of answerable questions):
1. Walk every chunk (round-robin across documents, seeded order) and several sentences per chunk (with
   `fronted_questions`, those that allow a fronted question first); in each sentence pick an answer span
   extractively (a number/date, a capitalised name, else the sentence's last words).
2. Question (questions.py): with `fronted_questions` (off by default: it did not help, see __init__), a who/what/
   when/where question made by rule where the sentence allows one; else the generator writes one for the span
   (answer-aware question generation, few-shot) within a budget of tries; where it fails the filters, or the budget
   is spent, a cloze question made from the sentence (span → wh-word).
3. Target = what the runtime system prompt asks for: one short sentence copied from the source that contains the
   exact span and ends with its marker, e.g. "The tower was completed in 1889 [2]." (the sentence; when longer than
   `target_words`, a window of its clauses, else of its words ending at the span: answer_sentence), less the
   leading words the question already says (without_asked_lead: "... built in what year?" -> "1889 [2]."). It is
   verified with the citation check against the source it cites.
4. Sources: the oracle chunk among 0-4 distractors, hard ones from BM25 and the runtime's hybrid retrieval, never
   one that also contains the span. The oracle stands at a random position ("uniform", the default), or where the
   runtime's hybrid retrieval ranks it for the question ("retrieval": mostly first, as users' answers are). v8
   (uniform) cited [2]-[4] in half its open-retrieval answers; v9 (retrieval) refused far more (see __init__).
   A share `p_refusal` of examples shows distractors only and teaches the not-found reply; with `refusal_twins`
   each of them repeats an answering example's question and distractors without the answering source.
5. Filters, each rejection counted under its reason in the data card: generator question shape / grounding /
   round-trip retrieval; fronted and cloze round-trip retrieval; duplicate question; target not supported by its source.
6. Split: by document when the collection has enough documents (validation questions from documents training never
   saw); otherwise by chunk; with fewer than 2 usable chunks there is no validation file. The card says which.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import BadInputError
from ..evaluate.metrics import restates
from ..fileio import write_text_atomic
from . import SynthesisOptions
from ..generate.citations import check_answer
from ..generate.prompts import NOT_FOUND, messages_for
from ..text import words as word_tokens
from .questions import (CLAUSE_BREAK, cloze_question, fronted_questions, generator_question, normalized,
                        pick_span, question_problem, sentences_of)

MIN_CHUNKS = 2  # an example needs its chunk and at least one distractor


@dataclass
class DataConfig(SynthesisOptions):
    """A synthesis run: the collection, where the files go, the user-facing knobs (SynthesisOptions) and the ones
    only tests and benches change."""
    collection: str
    out_dir: Path
    max_distractors: int = 4  # each prompt shows the oracle among 0..max_distractors others
    spans_per_chunk: int = 6  # sentences used per chunk (one question each)
    # Sources cut to ~80 words around the answer (distractors: their first 80 words): on XQuAD-en examples shrink
    # from 3200 to 2400 characters on average (-25% tokens, so ~1.3x more examples per CPU minute); most
    # paragraphs are ~120 words, so the answering sentence and its neighbours stay. The ask pipeline then shows the
    # model less (focus_words: 40 words around the sentence that best covers the question). Training on sources cut
    # that way too (v21, commit 977c8ac) took 14:30 instead of v16's 25:37 but answered no better than v16 with the
    # focus, and trended worse (open F1 -3.8 [-8.0, +0.3], contains -7 [-14, 0]); a model trained to find the
    # answer in 80 words finds it in 40 (docs/results/focus).
    window_words: int = 80
    roundtrip_k: int = 5
    val_fraction: float = 0.1
    seed: int = 0


@dataclass
class DataCard:
    config: dict
    chunks: int = 0
    candidates: int = 0  # (chunk, sentence, span) triples tried
    examples: dict = field(default_factory=dict)  # split -> count
    split: str = ""
    with_oracle: int = 0
    refusals: int = 0
    oracle_positions: dict = field(default_factory=dict)  # "position/sources" -> count
    question_sources: dict = field(default_factory=dict)  # generator / cloze -> accepted count
    generator_acceptance: float = 0.0
    # Share of answering targets that are >= 80% the question's words: they teach repeating the question, and a
    # model trained on 91% of them answered real questions with their own words (docs/results/xquad-finetune-v7).
    targets_restating_question: float = 0.0
    rejections: dict = field(default_factory=dict)  # reason -> count
    filters: list[str] = field(default_factory=lambda: [
        "generator question: ends with '?', 4-40 words, does not contain the answer, asks for a number when the "
        "answer is one, shares 2+ content words with the sentence",
        "round-trip: the question retrieves its own chunk in the top-k (every question)",
        "no duplicate questions (normalised)",
        "the target sentence is supported by the source it cites (citation check)",
    ])
    sha256: str = ""


def answer_sentence(sentence: str, span: str, max_words: int) -> str | None:
    """The source sentence (or, for long ones, a window of whole clauses around the span, else of words ending at
    the span) without end punctuation: always a verbatim substring of the sentence that holds the whole span.
    None if the span is not in the sentence."""
    text, answer = sentence.strip().rstrip(".!?;:, "), span.rstrip(".!?;:, ")  # "U.S." ends a sentence as "U.S"
    where = text.find(answer)
    if where < 0:
        return None
    if len(text.split()) <= max_words:
        return text
    end = where + len(answer)
    cuts = [0] + [m.end() for m in CLAUSE_BREAK.finditer(text)] + [len(text)]
    clauses = list(zip(cuts, cuts[1:]))  # (start, end) character ranges
    at = next((i for i, (a, b) in enumerate(clauses) if a <= where and end <= b), None)
    words = lambda lo, hi: len(text[clauses[lo][0]: clauses[hi][1]].split())  # noqa: E731
    if at is None or words(at, at) > max_words:
        # No clause fits: the words before the span and the span, so the reply ends at its answer (F1 is graded
        # against a short gold span); words after it only when the sentence starts too close to fill the window.
        tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        first = next(i for i, (_, b) in enumerate(tokens) if b > where)
        last = next(i for i, (_, b) in enumerate(tokens) if b >= end)
        size = max(max_words, last - first + 1)
        lo = max(0, last + 1 - size)
        hi = min(len(tokens), lo + size)
        out = text[tokens[lo][0]: tokens[hi - 1][1]]
    else:
        lo = hi = at
        while True:  # grow by whole clauses while under the limit, preferring the left (it holds the subject)
            if lo > 0 and words(lo - 1, hi) <= max_words:
                lo -= 1
            elif hi + 1 < len(clauses) and words(lo, hi + 1) <= max_words:
                hi += 1
            else:
                break
        out = text[clauses[lo][0]: clauses[hi][1]]
    # verbatim, lower-case start included: a capitalised "Deal" would be a name the source does not hold
    trimmed = out.strip().lstrip("(").rstrip(",;:–—- ")
    return trimmed if answer in trimmed else out.strip()


def without_asked_lead(claim: str, question: str, span: str) -> str:
    """The claim without its leading words the question already says, never cutting into the span. A cloze
    question ends with the words before its blank ("... began in the mid-18th century within the what?"), and
    targets that began with them ("century within the Church of England [3].") taught the model to answer real
    questions with the question's own last words ("Who stripped the ball from Newton on a 3rd and nine?" -> "on a
    3rd and nine [1]."). Without them v22 answered with the gold passage at F1 41.5 instead of 26.0, and restated
    the question in 6% of its answers instead of 21% (docs/results/answer-lead)."""
    start = claim.find(span)
    if start < 0:
        return claim
    asked = set(word_tokens(question))
    cut = 0
    for token in re.finditer(r"\S+", claim[:start]):
        if not set(word_tokens(token.group())) <= asked:
            break
        cut = token.end()
    return claim[cut:].lstrip(" ,;:–—-")


def _plan_split(by_doc: dict[int, list], docs: list[int], config: DataConfig) -> tuple[set, set, str]:
    """(validation documents, validation chunks, description). Documents when there are enough of them, so
    validation measures transfer to unseen documents; else chunks; else no validation at all."""
    if config.val_fraction <= 0:
        return set(), set(), "none (val_fraction 0): training runs without validation"
    every = max(2, round(1 / config.val_fraction))
    if len(docs) >= every:  # every n-th document in shuffled order: both splits fill as sampling proceeds
        val_docs = {d for i, d in enumerate(docs) if i % every == every - 1}
        return val_docs, set(), f"by document: {len(val_docs)} of {len(docs)} documents held out"
    chunks = [h.text_id for d in docs for h in by_doc[d]]
    if len(chunks) >= 3:
        val_chunks = {t for i, t in enumerate(chunks) if i % every == every - 1} or {chunks[-1]}
        return set(), val_chunks, (f"by chunk: only {len(docs)} documents, so {len(val_chunks)} of {len(chunks)} "
                                   "chunks held out (validation questions come from training documents)")
    return set(), set(), f"none: only {len(chunks)} chunks; training runs without validation"


def synthesize(collection, retriever, generator, config: DataConfig,
               on_event: Callable[[dict], None] = lambda e: None) -> DataCard:
    """Write train.jsonl, val.jsonl (when there is a validation split), heldout.json and data_card.json."""
    rng = random.Random(config.seed)
    hits = collection.all_hits()
    if len(hits) < MIN_CHUNKS:
        raise BadInputError(f"collection {collection.name!r} has {len(hits)} usable chunks; synthetic data needs "
                            f"at least {MIN_CHUNKS} (ingest more documents)")
    by_doc: dict[int, list] = defaultdict(list)
    for hit in hits:
        by_doc[hit.doc_id].append(hit)
    docs = sorted(by_doc)
    rng.shuffle(docs)
    for d in docs:
        rng.shuffle(by_doc[d])
    val_docs, val_chunks, split = _plan_split(by_doc, docs, config)
    # candidates: the r-th sentence of every chunk before any chunk's (r+1)-th, documents interleaved
    ranked = []
    for d_i, d in enumerate(docs):
        for c_i, hit in enumerate(by_doc[d]):
            sentences = sentences_of(hit.text)
            rng.shuffle(sentences)
            fronted = {s: fronted_questions(s) if config.fronted_questions else [] for s in sentences}
            sentences.sort(key=lambda s: not fronted[s])  # stable: a chunk's fronted questions are used first
            ranked += [((r, c_i, d_i), hit, s, fronted[s]) for r, s in enumerate(sentences[: config.spans_per_chunk])]
    ranked.sort(key=lambda x: x[0])

    card = DataCard(config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
                    chunks=len(hits), split=split)
    rejections, sources_used, positions = Counter(), Counter(), Counter()
    restating = 0
    tries_made, generator_s = 0, 0.0
    seen: set[str] = set()
    examples: dict[str, list] = {"train": [], "val": []}
    for _, hit, sentence, fronted in ranked:
        if len(examples["train"]) + len(examples["val"]) >= config.max_examples:
            break
        card.candidates += 1
        question = origin = None
        if fronted:
            span, asked = rng.choice(fronted)
            if _roundtrip(retriever, asked, hit.text_id, config.roundtrip_k):
                question, origin = asked, "fronted"
            else:  # the sentence still gets a generator or cloze question below
                rejections["fronted: round-trip retrieval failed"] += 1
        if question is None:
            span = pick_span(sentence, rng)
        if not span:
            rejections["no answer span in the sentence"] += 1
            continue
        for attempt in range(config.generator_tries if question is None else 0):
            if not (config.use_generator and generator is not None and generator_s < config.generator_seconds):
                break
            tries_made += 1
            t0 = time.perf_counter()
            # a retry samples hotter: at 0.2 the same prompt mostly gives the same rejected question back
            asked = generator_question(generator, sentence, span, temperature=0.2 if attempt == 0 else 0.8)
            generator_s += time.perf_counter() - t0
            problem = question_problem(asked, span, sentence)
            if problem:
                rejections[f"generator: {problem}"] += 1
            elif not _roundtrip(retriever, asked, hit.text_id, config.roundtrip_k):
                rejections["generator: round-trip retrieval failed"] += 1
            else:
                question, origin = asked, "generator"
                break
        if question is None:
            asked = cloze_question(sentence, span)
            if normalized(span) in normalized(asked):  # the span occurs twice in the sentence
                rejections["cloze: question contains the answer"] += 1
                continue
            if not _roundtrip(retriever, asked, hit.text_id, config.roundtrip_k):
                rejections["cloze: round-trip retrieval failed"] += 1
                continue
            question, origin = asked, "cloze"
        if normalized(question) in seen:
            rejections["duplicate question"] += 1
            continue
        made, problem = _example(retriever, question, span, sentence, hit, config, rng)
        if problem:
            rejections[problem] += 1
            continue
        seen.add(normalized(question))
        sources_used[origin] += 1
        held_out = hit.doc_id in val_docs or hit.text_id in val_chunks
        for example in made:
            meta = example["meta"]
            meta["origin"] = origin
            if meta["oracle_position"] is None:
                card.refusals += 1
            else:
                card.with_oracle += 1
                restating += restates(example["messages"][-1]["content"], question)
                positions[f"{meta['oracle_position'] + 1}/{meta['n_sources']}"] += 1
            examples["val" if held_out else "train"].append(example)
        on_event({"event": "example", "done": len(examples["train"]) + len(examples["val"]),
                  "total": config.max_examples, "origin": origin})

    if not examples["train"]:
        raise BadInputError(f"collection {collection.name!r}: no training example passed the filters "
                            f"(rejections: {dict(rejections)})")
    if not examples["val"] and (val_docs or val_chunks):
        card.split += "; no validation example passed the filters, so training runs without validation"
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "data_card.json").unlink(missing_ok=True)  # the card marks a complete folder: last to go in
    for split_name, items in examples.items():
        path = config.out_dir / f"{split_name}.jsonl"
        if items:
            write_text_atomic(path, "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
        else:
            path.unlink(missing_ok=True)  # never an empty file that `finetune train --data` would reject
    heldout = heldout_squad(hits, val_docs, val_chunks, examples["val"])
    write_text_atomic(config.out_dir / "heldout.json", json.dumps(heldout, ensure_ascii=False))
    card.examples = {k: len(v) for k, v in examples.items()}
    card.question_sources = dict(sources_used)
    card.oracle_positions = dict(sorted(positions.items()))
    card.generator_acceptance = round(sources_used["generator"] / tries_made, 3) if tries_made else 0.0
    card.targets_restating_question = round(restating / card.with_oracle, 3) if card.with_oracle else 0.0
    card.rejections = dict(rejections.most_common())
    card.sha256 = hashlib.sha256(b"".join((config.out_dir / f"{s}.jsonl").read_bytes() for s in ("train", "val")
                                          if (config.out_dir / f"{s}.jsonl").is_file())).hexdigest()
    write_text_atomic(config.out_dir / "data_card.json", json.dumps(asdict(card), indent=2) + "\n")
    return card


def heldout_squad(hits: list, val_docs: set[int], val_chunks: set[int], val_examples: list[dict]) -> dict:
    """The validation questions as a SQuAD v1.1 file for the A/B gate: every held-out chunk is a context (so
    retrieval meets the same distractors a user's question meets), each question attached to its own."""
    questions: dict[int, list] = defaultdict(list)
    for n, ex in enumerate(val_examples):
        meta = ex["meta"]
        questions[meta["text_id"]].append({"id": f"val-{n}", "question": meta["question"],
                                           "answers": [{"text": meta["answer"]}]})
    paragraphs = [{"context": h.text, "qas": questions.get(h.text_id, [])} for h in hits
                  if h.doc_id in val_docs or h.text_id in val_chunks]
    return {"version": "edgerag-heldout", "data": [{"title": "held-out documents", "paragraphs": paragraphs}]}


def _roundtrip(retriever, question: str, text_id: int, k: int) -> bool:
    return any(h.text_id == text_id for h in retriever.search(question, k, "hybrid"))


def _window(text: str, anchor: str, words: int) -> str:
    """About `words` words of text around anchor (kept whole)."""
    tokens = text.split()
    if not words or len(tokens) <= words or anchor not in text:
        return text
    first = text[: text.index(anchor)].count(" ")
    size = max(words, len(anchor.split()))
    lo = max(0, min(first - (size - len(anchor.split())) // 2, len(tokens) - size))
    return " ".join(tokens[lo: lo + size])


def _example(retriever, question: str, span: str, sentence: str, oracle, config: DataConfig,
             rng: random.Random) -> tuple[list[dict], str | None]:
    """The chats one question makes in the runtime format (an answering one, a refusal, or with `refusal_twins`
    an answering one and sometimes its refusal twin), or ([], rejection reason)."""
    depth = config.max_distractors + 4
    hard = [retriever.search(question, depth, mode) for mode in ("bm25", "hybrid")]
    pool, seen = [], {oracle.text_id}
    for pair in zip(*hard):  # interleaved: lexical near-misses and what the runtime would show
        for h in pair:
            if h.text_id not in seen and span not in h.text:  # a distractor that also answers is no distractor
                seen.add(h.text_id)
                pool.append(replace(h.source, text=_window(h.source.text, "", config.window_words)))
    if not pool:
        return [], "no distractor without the answer"
    # Sources in the prompt, 1 included: the runtime shows a single source when the relevance gate keeps one, and a
    # model trained on 2-5 only cited "[2]" with one source shown (docs/results/xquad-finetune-v3).
    shown = rng.randint(1, config.max_distractors + 1)
    claim = answer_sentence(sentence, span, config.target_words)
    if claim is None:
        return [], "answer span not in its sentence"
    answer = without_asked_lead(claim, question, span)  # the window below stays anchored on the whole claim

    def chat(sources: list, target: str, position: int | None) -> dict:
        return {"messages": messages_for(question, sources) + [{"role": "assistant", "content": target}],
                "meta": {"text_id": oracle.text_id, "question": question, "answer": span,
                         "oracle_position": position, "n_sources": len(sources)}}

    draw = rng.random()
    if not config.refusal_twins and draw < config.p_refusal:
        return [chat(pool[:shown], NOT_FOUND, None)], None
    distractors = pool[: shown - 1]
    rank = next((i for i, h in enumerate(hard[1]) if h.text_id == oracle.text_id), None)
    position = (min(rank, len(distractors)) if config.oracle_positions == "retrieval" and rank is not None
                else rng.randrange(len(distractors) + 1))
    sources = distractors[:position] + [replace(oracle, text=_window(oracle.text, claim, config.window_words))] \
        + distractors[position:]
    target = f"{answer} [{position + 1}]."
    # The whole claim is checked: the answer is a piece of it, and a bare span ("1889") carries no claim to check.
    checked = check_answer(f"{claim} [{position + 1}].", [s.text for s in sources])
    if any(s.unsupported for s in checked) or not any(position + 1 in s.supported_by for s in checked):
        return [], "target not supported by its source (citation check)"
    out = [chat(sources, target, position)]
    # A twin for a share q of answering examples makes refusals p_refusal of all: q / (1 + q) = p.
    if config.refusal_twins and draw < config.p_refusal / (1 - config.p_refusal):
        out.append(chat(distractors or pool[:1], NOT_FOUND, None))
    return out, None


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
