"""Synthetic training data v2 from real collections: targets shaped like the runtime prompt asks (a sentence copied
from the cited source, holding the exact answer span, ending with its marker), the oracle at varied positions among
hard distractors that do not answer, a measured refusal share, a data card whose counts add up, and a split that
never leaves an empty validation file (the demo's 3 files)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from edgerag.errors import BadInputError
from edgerag.evaluate.datasets import load_squad
from edgerag.finetune.data import DataConfig, answer_sentence, read_jsonl, synthesize, without_asked_lead
from edgerag.generate.prompts import NOT_FOUND, SYSTEM_PROMPT
from edgerag.retrieve import Retriever
from edgerag.runtime import open_collection
from xquad import build_collection

REPO = Path(__file__).resolve().parents[1]


def _sources(user_message: str) -> dict[int, str]:
    body = user_message.split("\n\nQuestion:")[0].removeprefix("Sources:\n")
    return {int(n): text for n, text in re.findall(r"^\[(\d+)\] \([^)]*\) (.*?)(?=\n\n\[\d+\] |\Z)", body, re.S | re.M)}


def test_targets_are_cited_source_sentences_with_varied_oracle_positions(settings, tmp_path):
    build_collection(settings, "xq", n_articles=6)
    collection, embedder = open_collection(settings, "xq")
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        config = DataConfig("xq", tmp_path / "data", max_examples=60, use_generator=False, val_fraction=0.34,
                            p_refusal=0.2, fronted_questions=True)  # the default placement: uniform
        card = synthesize(collection, retriever, None, config)
        doc_of = {h.text_id: h.doc_id for h in collection.all_hits()}

    train, val = read_jsonl(tmp_path / "data" / "train.jsonl"), read_jsonl(tmp_path / "data" / "val.jsonl")
    assert card.examples == {"train": len(train), "val": len(val)} and len(train) + len(val) == 60
    assert card.split.startswith("by document") and val and train
    assert not {doc_of[e["meta"]["text_id"]] for e in train} & {doc_of[e["meta"]["text_id"]] for e in val}
    positions, sizes, refusals, restating = Counter(), Counter(), 0, 0
    for example in train + val:
        meta, messages = example["meta"], example["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert messages[0]["content"] == SYSTEM_PROMPT
        sources, target = _sources(messages[1]["content"]), messages[2]["content"]
        assert len(sources) == meta["n_sources"] and 1 <= len(sources) <= 5
        sizes[len(sources)] += 1
        if meta["oracle_position"] is None:
            refusals += 1
            assert target == NOT_FOUND and all(meta["answer"] not in s for s in sources.values())
            continue
        n = meta["oracle_position"] + 1
        positions[n] += 1
        match = re.fullmatch(rf"(.+) \[{n}\]\.", target)
        assert match, target
        claim = match.group(1)
        asked = set(re.findall(r"[a-z0-9]+", meta["question"].lower()))
        claim_words = re.findall(r"[a-z0-9]+", claim.lower())
        restating += sum(w in asked for w in claim_words) >= 0.8 * len(claim_words)
        assert meta["answer"] in claim and claim in sources[n]  # the exact span, copied from the cited source
        lead = claim[: claim.index(meta["answer"])].split()
        assert not lead or not set(re.findall(r"[a-z0-9]+", lead[0].lower())) <= asked  # no lead-in the question says
        assert len(claim.split()) <= config.target_words
        assert all(meta["answer"] not in text for k, text in sources.items() if k != n)  # distractors don't answer
    assert len(positions) >= 3 and len(sizes) >= 3  # the oracle moves; prompts hold 2..5 sources
    assert refusals == card.refusals and 0.05 <= refusals / 60 <= 0.4  # p_refusal = 0.2
    assert card.with_oracle + card.refusals == 60 and sum(card.oracle_positions.values()) == card.with_oracle
    # the card counts the targets that restate their question (cloze questions are their sentence with the answer
    # blanked, and their targets lose the lead-in the question says: few remain)
    assert card.targets_restating_question == round(restating / card.with_oracle, 3) < 0.1
    # every candidate tried is either an example or a rejection counted under its reason
    assert card.candidates == 60 + sum(card.rejections.values())
    assert "span not quoted from chunk" not in card.rejections
    card_file = json.loads((tmp_path / "data" / "data_card.json").read_text())
    assert card_file["sha256"] == card.sha256 and card_file["question_sources"] == card.question_sources
    # no generator: questions are fronted by rule where a sentence allows it, cloze elsewhere
    assert set(card.question_sources) == {"fronted", "cloze"} and sum(card.question_sources.values()) == 60
    origins = Counter(e["meta"]["origin"] for e in train + val)
    assert origins == Counter(card.question_sources)
    assert all(e["meta"]["question"].split()[0] in ("Who", "What", "When", "Where")
               for e in train + val if e["meta"]["origin"] == "fronted")

    heldout = load_squad(tmp_path / "data" / "heldout.json")
    assert len(heldout.items) == len(val)
    assert {i.question for i in heldout.items} == {e["meta"]["question"] for e in val}
    assert all(heldout.contexts[i.gold[0]].text.count(i.answers[0]) for i in heldout.items)


def test_retrieval_placement_puts_the_answering_source_where_hybrid_retrieval_ranks_it(settings, tmp_path):
    """The runtime shows sources in hybrid rank order, mostly with the answer first: with `oracle_positions=
    "retrieval"` training prompts do the same (v8, trained on uniform positions, cited [2]-[4] in half of its
    open-retrieval answers)."""
    build_collection(settings, "xq", n_articles=4)
    collection, embedder = open_collection(settings, "xq")
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        config = DataConfig("xq", tmp_path / "data", max_examples=40, use_generator=False, p_refusal=0.0,
                            oracle_positions="retrieval")
        synthesize(collection, retriever, None, config)
        examples = read_jsonl(tmp_path / "data" / "train.jsonl") + read_jsonl(tmp_path / "data" / "val.jsonl")
        positions = Counter()
        for example in examples:
            meta = example["meta"]
            ranked = [h.text_id for h in retriever.search(meta["question"], config.max_distractors + 4, "hybrid")]
            rank = ranked.index(meta["text_id"])  # round-trip filter: the question retrieves its chunk
            assert meta["oracle_position"] == min(rank, meta["n_sources"] - 1)
            positions[meta["oracle_position"]] += 1
    assert len(examples) == 40 and positions[0] >= 20  # mostly first, as at runtime


def test_refusal_twins_repeat_an_answering_question_without_its_answering_source(settings, tmp_path):
    """With `refusal_twins` a not-found example is never a question of its own: it repeats an answering example's
    question and distractors with the answering source taken away, in the same split, and refusals keep their share."""
    build_collection(settings, "xq", n_articles=4)
    collection, embedder = open_collection(settings, "xq")
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        config = DataConfig("xq", tmp_path / "data", max_examples=60, use_generator=False, p_refusal=0.25,
                            refusal_twins=True, val_fraction=0.34)
        card = synthesize(collection, retriever, None, config)
    splits = {name: read_jsonl(tmp_path / "data" / f"{name}.jsonl") for name in ("train", "val")}
    total = sum(map(len, splits.values()))
    assert card.refusals + card.with_oracle == total >= 60 and 0.1 <= card.refusals / total <= 0.4
    for examples in splits.values():
        answering = {e["meta"]["question"]: e for e in examples if e["meta"]["oracle_position"] is not None}
        for refusal in (e for e in examples if e["meta"]["oracle_position"] is None):
            twin = answering[refusal["meta"]["question"]]  # KeyError: a refusal without its answering twin
            assert refusal["messages"][-1]["content"] == NOT_FOUND
            shown = _sources(twin["messages"][1]["content"])
            del shown[twin["meta"]["oracle_position"] + 1]
            left = list(_sources(refusal["messages"][1]["content"]).values())
            assert left == list(shown.values()) or (not shown and len(left) == 1)
            assert all(refusal["meta"]["answer"] not in text for text in left)


class _ScriptedGenerator:
    """Answers the question-writing prompt like a small model might: a statement at temperature 0.2, a question
    made from the fact when sampled hotter."""

    def __init__(self):
        self.temperatures = []

    def chat(self, messages, max_tokens, temperature):
        self.temperatures.append(temperature)
        fact, answer = re.match(r"Fact: (.*)\nAnswer: (.*)", messages[-1]["content"], re.S).groups()
        if temperature < 0.5:
            return "This is a fact about the text."
        return "What does the text say about " + fact.replace(answer, "it").rstrip(". ") + "?"


@pytest.mark.parametrize("tries", [1, 2])
def test_a_rejected_generator_question_is_retried_hotter_before_the_cloze_fallback(settings, tmp_path, tries):
    build_collection(settings, "xq", n_articles=3)
    collection, embedder = open_collection(settings, "xq")
    generator = _ScriptedGenerator()
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        card = synthesize(collection, retriever, generator,
                          DataConfig("xq", tmp_path / "data", max_examples=20, generator_tries=tries, val_fraction=0,
                                     fronted_questions=False))  # every candidate goes to the generator
    assert card.rejections["generator: not a question"] == card.candidates - card.rejections.get(
        "no answer span in the sentence", 0)  # every first try
    assert generator.temperatures.count(0.2) == card.rejections["generator: not a question"]
    if tries == 1:
        assert card.question_sources == {"cloze": 20} and 0.8 not in generator.temperatures
    else:
        assert card.question_sources.get("generator", 0) >= 5 and generator.temperatures.count(0.8) >= 5
        assert card.generator_acceptance == round(card.question_sources["generator"] / len(generator.temperatures), 3)


def test_demo_collection_splits_by_chunk_and_never_writes_an_empty_val(settings, tmp_path, capsys):
    from edgerag.cli import main

    assert main(["ingest", str(REPO / "docs" / "samples"), "-c", "demo"]) == 0
    out = tmp_path / "demo-data"
    capsys.readouterr()
    assert main(["finetune", "data", "-c", "demo", "--out", str(out), "--no-generator", "--json"]) == 0
    card = json.loads((out / "data_card.json").read_text())
    printed = json.loads(capsys.readouterr().out)  # --json: the card on stdout, nothing else
    assert printed["card"]["examples"] == card["examples"] and printed["out"] == str(out)
    assert card["split"].startswith("by chunk"), card["split"]
    train, val = read_jsonl(out / "train.jsonl"), read_jsonl(out / "val.jsonl")  # both non-empty (no error)
    assert card["examples"] == {"train": len(train), "val": len(val)} and train and val
    # a stale empty val.jsonl from an older run is removed when a split leaves no validation examples
    (out / "val.jsonl").write_text("")
    collection, embedder = open_collection(settings, "demo")
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        card2 = synthesize(collection, retriever, None, DataConfig("demo", out, use_generator=False,
                                                                   val_fraction=0))
    assert card2.split.startswith("none") and not (out / "val.jsonl").exists() and card2.examples["val"] == 0


def test_answer_sentence_keeps_the_span_in_a_clause_window():
    sentence = ("The Panthers, who had lost only one game all season under head coach Ron Rivera, finished the "
                "regular season with a 15–1 record, the best in franchise history, and then beat the Arizona "
                "Cardinals 49–15 in the NFC Championship Game.")
    for span in ("15–1", "Ron Rivera", "49–15", "Arizona Cardinals"):
        claim = answer_sentence(sentence, span, 25)
        assert span in claim and claim in sentence
        assert len(claim.split()) <= 25
    assert answer_sentence("Paris is the capital of France.", "Paris", 25) == "Paris is the capital of France"


def test_a_short_answer_window_ends_at_the_span_and_never_cuts_it():
    sentence = "In 2006, UNICEF estimated that up to 30% of girls in the region were married before the age of 18."
    assert answer_sentence(sentence, "up to 30%", 6) == "UNICEF estimated that up to 30%"
    assert answer_sentence(sentence, "In 2006", 6) == "In 2006"  # a clause of its own
    assert answer_sentence(sentence, "UNICEF", 6) == "In 2006, UNICEF estimated that up"  # too near the start
    long_span = "girls in the region were married before the age of 18"
    assert answer_sentence(sentence, long_span, 6) == long_span  # longer than the window: the span whole
    assert answer_sentence(sentence, "40%", 6) is None  # not in the sentence: no target to build
    assert answer_sentence("It ended in the U.S.", "the U.S.", 6) == "It ended in the U.S"


def test_a_target_drops_the_lead_in_its_question_already_says():
    question = "The movement began in the mid-18th century within the what?"  # a cloze question
    assert without_asked_lead("century within the Church of England", question, "Church of England") == \
        "Church of England"
    real = "What is the name of the road that is lined with tall palm trees?"
    claim = "most of its length, Kearney Boulevard"  # "most" is not the question's: the claim stays whole
    assert without_asked_lead(claim, real, "Kearney Boulevard") == claim
    assert without_asked_lead("the Church of England", "What is the church?", "the Church of England") == \
        "the Church of England"  # never into the span
    assert without_asked_lead("in the year 1889,", "In what year was the tower built?", "1889") == "1889,"
    assert without_asked_lead("opened in 1998–2002", "It opened in 1998–when?", "2002") == "2002"


def test_data_module_reads_the_store_through_its_api():
    source = (REPO / "edgerag" / "finetune" / "data.py").read_text()
    assert ".conn" not in source


def test_too_few_chunks_is_a_clear_error(settings, tmp_path):
    from edgerag.ingest.sync import Record, sync_records

    collection, embedder = open_collection(settings, "small", create=True)
    with collection:
        sync_records(collection, embedder, [Record("a", "One short fact. Paris is in France.")], 220, 32)
        retriever = Retriever.from_settings(collection, embedder, settings)
        with pytest.raises(BadInputError, match="usable chunks"):
            synthesize(collection, retriever, None, DataConfig("small", tmp_path / "d", use_generator=False))
    assert not (tmp_path / "d").exists()
