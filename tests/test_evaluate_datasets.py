"""Benchmark readers: BEIR folder/zip, SQuAD, HotpotQA; malformed files name the file and the line or key."""

import json
import zipfile

import pytest

from conftest import shared
from edgerag.errors import BadInputError
from edgerag.evaluate.datasets import load_beir, load_hotpot, load_qa_file, load_squad, subset


def write_beir(folder, corpus=None, queries=None, qrels=None):
    """A small BEIR-format dataset; returns the folder."""
    corpus = corpus or [{"_id": "d1", "title": "Cats", "text": "Cats purr."}, {"_id": "d2", "text": "Dogs bark."}]
    queries = queries or [{"_id": "q1", "text": "purring"}, {"_id": "q2", "text": "barking"},
                          {"_id": "q3", "text": "not judged"}]
    qrels = qrels if qrels is not None else "query-id\tcorpus-id\tscore\nq1\td1\t2\nq2\td2\t1\nq2\td1\t0\n"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels" / "test.tsv").write_text(qrels)
    return folder


def test_beir_folder_and_zip_read_the_same(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.rglob("*"):
            if f.is_file():
                z.write(f, f"tiny/{f.relative_to(folder)}")
    for source in (folder, tmp_path / "tiny.zip", tmp_path):  # tmp_path: the dataset is its only subfolder
        ds = load_beir(source)
        assert set(ds.corpus) == {"d1", "d2"}
        assert ds.corpus["d1"].full_text == "Cats\n\nCats purr." and ds.corpus["d2"].title is None
        assert ds.queries == {"q1": "purring", "q2": "barking"}  # only judged queries
        assert ds.qrels == {"q1": {"d1": 2}, "q2": {"d2": 1, "d1": 0}}


@pytest.mark.parametrize("corpus_line,message", [
    ('{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": \n', r"corpus.jsonl line 2: invalid JSON"),
    ('{"_id": "d1", "text": "ok"}\n\n{"text": "no id"}\n', r"corpus.jsonl line 3: missing string field '_id'"),
    ('{"_id": "d1", "text": "ok"}\n{"_id": "d1", "text": "again"}\n', r"corpus.jsonl line 2: duplicate _id"),
    ('["not", "an", "object"]\n', r"corpus.jsonl line 1: expected a JSON object"),
])
def test_malformed_corpus_names_file_and_line(tmp_path, corpus_line, message):
    folder = write_beir(tmp_path / "bad")
    (folder / "corpus.jsonl").write_text(corpus_line)
    with pytest.raises(BadInputError, match=message):
        load_beir(folder)


def test_malformed_qrels_name_file_and_line(tmp_path):
    folder = write_beir(tmp_path / "a", qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\thigh\n")
    with pytest.raises(BadInputError, match=r"qrels/test.tsv line 3: score 'high' is not an integer"):
        load_beir(folder)
    folder = write_beir(tmp_path / "b", qrels="q1\td1\n")
    with pytest.raises(BadInputError, match=r"test.tsv line 1: expected query-id, corpus-id, score"):
        load_beir(folder)
    folder = write_beir(tmp_path / "c", qrels="q9\td1\t1\n")
    with pytest.raises(BadInputError, match=r"test.tsv: query id 'q9' is not in queries.jsonl"):
        load_beir(folder)
    with pytest.raises(BadInputError, match=r"dev.tsv: missing"):
        load_beir(folder, split="dev")
    with pytest.raises(BadInputError, match="no corpus.jsonl"):
        load_beir(tmp_path / "c" / "qrels")


def test_zip_errors_name_the_member(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x/corpus.jsonl", '{"_id": "d1", "text": "ok"}\n{"_id": 5, "text": "x"}\n')
    with pytest.raises(BadInputError, match=r"x.zip:x/corpus.jsonl line 2: missing string field '_id'"):
        load_beir(archive)
    (tmp_path / "plain.zip").write_text("not a zip")
    with pytest.raises(BadInputError, match="not a zip archive"):
        load_beir(tmp_path / "plain.zip")


def _squad(tmp_path, data):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    return path


SQUAD = {"data": [{"title": "Super_Bowl_50", "paragraphs": [
    {"context": "Super Bowl 50 was played in Santa Clara.",
     "qas": [{"id": "q1", "question": "Where?", "answers": [{"text": "Santa Clara", "answer_start": 28},
                                                            {"text": "Santa Clara", "answer_start": 28}]}]}]}]}


def test_squad_reader(tmp_path):
    ds = load_squad(_squad(tmp_path, SQUAD))
    assert ds.name == "squad"
    assert list(ds.contexts) == ["Super_Bowl_50-0"]
    assert ds.contexts["Super_Bowl_50-0"].title == "Super Bowl 50"
    item = ds.items[0]
    assert (item.id, item.question, item.answers, item.gold) == ("q1", "Where?", ["Santa Clara"], ["Super_Bowl_50-0"])


@pytest.mark.parametrize("mutate,key", [
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("answers"),
     r"data\[0\].paragraphs\[0\].qas\[0\].answers: missing"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][1].update(text=3),
     r"data\[0\].paragraphs\[0\].qas\[0\].answers\[1\].text: expected a string"),
    (lambda d: d["data"][0]["paragraphs"][0].update(context=None),
     r"data\[0\].paragraphs\[0\].context: expected a string"),
    (lambda d: d["data"][0].update(paragraphs={}), r"data\[0\].paragraphs: expected a list"),
    (lambda d: d.pop("data"), r"data: missing"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(answers=[]),
     r"data\[0\].paragraphs\[0\].qas\[0\].answers: empty"),
])
def test_malformed_squad_names_the_key(tmp_path, mutate, key):
    data = json.loads(json.dumps(SQUAD))
    mutate(data)
    with pytest.raises(BadInputError, match=r"squad.json: " + key):
        load_squad(_squad(tmp_path, data))


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"title": }\n]}')
    with pytest.raises(BadInputError, match=r"broken.json: invalid JSON at line 2 column"):
        load_squad(path)
    with pytest.raises(BadInputError, match="no such file"):
        load_squad(tmp_path / "missing.json")


def test_hotpot_reader_both_layouts(tmp_path):
    hf = [{"question": "Same nationality?", "answer": "yes", "type": "comparison",
           "supporting_facts": {"title": ["A", "B"], "sent_id": [0, 0]},
           "context": {"title": ["A", "B", "C"], "sentences": [["A is American."], ["B is", " American."], ["C."]]}}]
    original = [{"_id": "x1", "question": "Q?", "answer": "B", "supporting_facts": [["A", 0]],
                 "context": [["A", ["A met B."]], ["C", ["C."]]]}]
    (tmp_path / "hf.json").write_text(json.dumps(hf))
    (tmp_path / "orig.json").write_text(json.dumps(original))
    ds = load_hotpot(tmp_path / "hf.json")
    assert ds.items[0].gold == ["A", "B"] and ds.items[0].kind == "comparison" and ds.items[0].answers == ["yes"]
    assert ds.contexts["B"].text == "B is American." and ds.contexts["B"].full_text == "B\n\nB is American."
    ds = load_hotpot(tmp_path / "orig.json")
    assert ds.items[0].id == "x1" and ds.items[0].gold == ["A"] and set(ds.contexts) == {"A", "C"}
    assert load_qa_file(tmp_path / "orig.json").items[0].id == "x1"


def test_malformed_hotpot_names_the_key(tmp_path):
    bad = [{"question": "Q?", "answer": "x", "supporting_facts": {"title": ["Z"], "sent_id": [0]},
            "context": {"title": ["A"], "sentences": [["a"]]}}]
    (tmp_path / "h.json").write_text(json.dumps(bad))
    with pytest.raises(BadInputError, match=r"h.json: \[0\].supporting_facts: title 'Z' is not in its context"):
        load_hotpot(tmp_path / "h.json")
    bad[0]["context"] = {"title": ["A", "B"], "sentences": [["a"]]}
    (tmp_path / "h.json").write_text(json.dumps(bad))
    with pytest.raises(BadInputError, match=r"\[0\].context: 2 titles but 1 paragraphs"):
        load_hotpot(tmp_path / "h.json")


def test_subset_is_reproducible_and_keeps_order():
    items = list(range(100))
    a = subset(items, 10, seed=1)
    assert a == subset(items, 10, seed=1) and a == sorted(a) and len(a) == 10
    assert a != subset(items, 10, seed=2)
    assert subset(items, None) == items and subset(items, 500) == items


def test_the_shared_benchmark_files_load():
    nf = load_beir(shared("retrieval", "beir_nfcorpus", "nfcorpus.zip"))
    assert (len(nf.corpus), len(nf.queries), sum(len(q) for q in nf.qrels.values())) == (3633, 323, 12334)
    xq = load_squad(shared("qa", "xquad_en", "xquad.en.json"))
    assert (len(xq.contexts), len(xq.items)) == (240, 1190)
    hp = load_hotpot(shared("distractor", "hotpotqa_distractor_dev100", "hotpot_dev_distractor_first100.json"))
    assert len(hp.items) == 100 and all(len(i.gold) == 2 for i in hp.items)
