"""Synthetic training data from a real collection (XQuAD-en paragraphs): grounded targets in the runtime prompt
format, a document-level split, a held-out question file the gate can read, and a data card that adds up."""

from __future__ import annotations

import json
import re

import pytest

from edgerag.errors import BadInputError
from edgerag.evaluate.datasets import load_squad
from edgerag.finetune.data import DataConfig, read_jsonl, synthesize
from edgerag.generate.prompts import NOT_FOUND
from edgerag.retrieve import Retriever
from edgerag.runtime import open_collection
from xquad import build_collection


def test_synthesized_examples_are_grounded_split_and_counted(settings, tmp_path):
    build_collection(settings, "xq", n_articles=6)
    collection, embedder = open_collection(settings, "xq")
    with collection:
        retriever = Retriever.from_settings(collection, embedder, settings)
        config = DataConfig("xq", tmp_path / "data", max_examples=20, use_generator=False, val_fraction=0.34)
        card = synthesize(collection, retriever, None, config)
        doc_of = dict(collection.conn.execute("SELECT text_id, doc_id FROM chunks").fetchall())
        text_of = dict(collection.conn.execute("SELECT id, text FROM texts").fetchall())

    train, val = read_jsonl(tmp_path / "data" / "train.jsonl"), read_jsonl(tmp_path / "data" / "val.jsonl")
    assert card.examples == {"train": len(train), "val": len(val)} and len(train) + len(val) == 20
    assert val and train
    assert not {doc_of[e["meta"]["text_id"]] for e in train} & {doc_of[e["meta"]["text_id"]] for e in val}
    oracle = 0
    for example in train + val:
        meta, messages = example["meta"], example["messages"]
        assert messages[-1]["role"] == "assistant" and messages[-2]["role"] == "user"
        assert meta["answer"] in text_of[meta["text_id"]]  # quote check
        target = messages[-1]["content"]
        if meta["oracle_position"] is None:
            assert target == NOT_FOUND
            continue
        oracle += 1
        n = meta["oracle_position"] + 1
        assert target == f"{meta['answer']} [{n}]"
        cited = re.search(rf"\[{n}\][^\n]*\n(.*?)(?=\n\[\d+\]|\Z)", messages[-2]["content"], re.S)
        assert cited and meta["answer"] in messages[-2]["content"]
    assert oracle == card.with_oracle and 0.6 <= oracle / 20 <= 0.95  # p_oracle = 0.8
    card_file = json.loads((tmp_path / "data" / "data_card.json").read_text())
    assert card_file["sha256"] == card.sha256 and card_file["question_sources"] == {"cloze": 20}

    heldout = load_squad(tmp_path / "data" / "heldout.json")
    assert len(heldout.items) == len(val)
    assert {i.question for i in heldout.items} == {e["meta"]["question"] for e in val}
    assert all(heldout.contexts[i.gold[0]].text.count(i.answers[0]) for i in heldout.items)


def test_too_few_chunks_is_a_clear_error(settings, tmp_path):
    from edgerag.ingest.sync import Record, sync_records

    collection, embedder = open_collection(settings, "small", create=True)
    with collection:
        sync_records(collection, embedder, [Record("a", "One short fact. Paris is in France.")], 220, 32)
        retriever = Retriever.from_settings(collection, embedder, settings)
        with pytest.raises(BadInputError, match="usable chunks"):
            synthesize(collection, retriever, None, DataConfig("small", tmp_path / "d", use_generator=False))
    assert not (tmp_path / "d").exists()
