"""Readers for the benchmark formats: BEIR (folder or zip), SQuAD v1.1 JSON, HotpotQA (HF-style or original JSON).

A malformed file is a BadInputError naming the file and the line (JSONL, TSV) or the key path (JSON), e.g.
`xquad.json: data[3].paragraphs[1].qas[0].answers: expected a list`.
"""

from __future__ import annotations

import io
import json
import random
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError


@dataclass
class Document:
    key: str  # identity in the scratch collection (path `record://<key>`) and in qrels
    text: str
    title: str | None = None

    @property
    def full_text(self) -> str:
        """The text as ingested (sync_records puts the title first), which is also what oracle mode shows."""
        return f"{self.title}\n\n{self.text}" if self.title else self.text


@dataclass
class BeirDataset:
    name: str
    source: str
    corpus: dict[str, Document]
    queries: dict[str, str]  # only the queries the split's qrels judge
    qrels: dict[str, dict[str, int]]  # query id → {doc id: grade}
    split: str = "test"


@dataclass
class QAItem:
    id: str
    question: str
    answers: list[str]
    gold: list[str]  # keys of the contexts that hold the answer (SQuAD: its paragraph; HotpotQA: supporting titles)
    kind: str = ""  # e.g. HotpotQA's bridge / comparison


@dataclass
class QADataset:
    name: str
    source: str
    contexts: dict[str, Document]
    items: list[QAItem] = field(default_factory=list)


def dataset_name(path: Path) -> str:
    stem = path.name
    for suffix in (".zip", ".json", ".jsonl"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-").lower() or "dataset"


def subset(items: list, limit: int | None, seed: int = 0) -> list:
    """A reproducible random `limit` items (original order kept), or all of them."""
    if not limit or limit >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


# -- BEIR --------------------------------------------------------------------------------------------------------
class _Files:
    """The three BEIR files inside a folder, a folder's single subfolder, or a zip archive."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            raise BadInputError(f"{path}: no such file or folder")
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise BadInputError(f"{path}: not a zip archive or a folder with corpus.jsonl")
            self.zip = zipfile.ZipFile(path)
            names = [n for n in self.zip.namelist() if n.endswith("corpus.jsonl")]
            if not names:
                raise BadInputError(f"{path}: no corpus.jsonl inside the archive")
            self.root = min(names, key=len)[: -len("corpus.jsonl")]
        else:
            self.zip = None
            candidates = [path, *sorted(p for p in path.iterdir() if p.is_dir())]
            found = next((p for p in candidates if (p / "corpus.jsonl").is_file()), None)
            if found is None:
                raise BadInputError(f"{path}: no corpus.jsonl in this folder (expected BEIR layout)")
            self.root = found

    def label(self, rel: str) -> str:
        return f"{self.path}:{self.root}{rel}" if self.zip else str(self.root / rel)

    def lines(self, rel: str):
        """(line number, text) of a member; a missing one is an error naming what was expected."""
        try:
            raw = self.zip.open(self.root + rel) if self.zip else open(self.root / rel, "rb")
        except (KeyError, FileNotFoundError) as exc:
            raise BadInputError(f"{self.label(rel)}: missing (expected BEIR layout: corpus.jsonl, "
                                f"queries.jsonl, qrels/<split>.tsv)") from exc
        with raw, io.TextIOWrapper(raw, encoding="utf-8") as text:
            try:
                yield from enumerate(text, start=1)
            except UnicodeDecodeError as exc:
                raise BadInputError(f"{self.label(rel)}: not UTF-8 text ({exc.reason})") from exc


def _jsonl(files: _Files, rel: str, fields: tuple[str, ...]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for n, line in files.lines(rel):
        if not line.strip():
            continue
        where = f"{files.label(rel)} line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise BadInputError(f"{where}: expected a JSON object")
        for name in fields:
            if not isinstance(obj.get(name), str):
                raise BadInputError(f"{where}: missing string field {name!r}")
        if obj.get("title") is not None and not isinstance(obj["title"], str):
            raise BadInputError(f"{where}: 'title' must be a string")
        if obj["_id"] in out:
            raise BadInputError(f"{where}: duplicate _id {obj['_id']!r}")
        out[obj["_id"]] = obj
    return out


def _qrels(files: _Files, rel: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for n, line in files.lines(rel):
        parts = line.rstrip("\n\r").split("\t") if "\t" in line else line.split()
        if not parts or not line.strip():
            continue
        if n == 1 and len(parts) >= 3 and not parts[-1].lstrip("-").isdigit():  # "query-id corpus-id score"
            continue
        if len(parts) not in (3, 4):  # BEIR's 3 columns, or TREC's "qid iter docid grade"
            raise BadInputError(f"{files.label(rel)} line {n}: expected query-id, corpus-id, score "
                                f"separated by tabs, got {len(parts)} field(s)")
        qid, doc, grade = parts[0], parts[-2], parts[-1]
        try:
            out.setdefault(qid, {})[doc] = int(grade)
        except ValueError as exc:
            raise BadInputError(f"{files.label(rel)} line {n}: score {grade!r} is not an integer") from exc
    return out


def load_beir(path: Path | str, split: str = "test") -> BeirDataset:
    path = Path(path).expanduser()
    files = _Files(path)
    corpus = {k: Document(k, v["text"], v.get("title") or None)
              for k, v in _jsonl(files, "corpus.jsonl", ("_id", "text")).items()}
    queries = _jsonl(files, "queries.jsonl", ("_id", "text"))
    qrels = _qrels(files, f"qrels/{split}.tsv")
    if not qrels:
        raise BadInputError(f"{files.label(f'qrels/{split}.tsv')}: no judgements")
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise BadInputError(f"{files.label(f'qrels/{split}.tsv')}: query id {missing[0]!r} is not in "
                            f"queries.jsonl ({len(missing)} such)")
    return BeirDataset(dataset_name(path), str(path), corpus, {q: queries[q]["text"] for q in qrels}, qrels, split)


# -- SQuAD -------------------------------------------------------------------------------------------------------
def _read_json(path: Path):
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not UTF-8 text") from exc


def _get(obj, key, kind, where: str, path: Path):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind):
        expected = {list: "a list", str: "a string", dict: "an object"}.get(kind, kind.__name__)
        problem = "missing" if not isinstance(obj, dict) or key not in obj else f"expected {expected}"
        raise BadInputError(f"{path}: {where}.{key}: {problem}" if where else f"{path}: {key}: {problem}")
    return value


def load_squad(path: Path | str) -> QADataset:
    """SQuAD v1.1 JSON: data[].paragraphs[].{context, qas[].{id, question, answers[].text}}. Each paragraph is one
    context, keyed `<article title>-<paragraph index>` and titled with the article title."""
    path = Path(path).expanduser()
    data = _read_json(path)
    ds = QADataset(dataset_name(path), str(path), {})
    for a, article in enumerate(_get(data, "data", list, "", path)):
        where_a = f"data[{a}]"
        title = article.get("title", f"article{a}") if isinstance(article, dict) else None
        for p, para in enumerate(_get(article, "paragraphs", list, where_a, path)):
            where_p = f"{where_a}.paragraphs[{p}]"
            key = f"{title}-{p}"
            ds.contexts[key] = Document(key, _get(para, "context", str, where_p, path),
                                        str(title).replace("_", " "))
            for q, qa in enumerate(_get(para, "qas", list, where_p, path)):
                where_q = f"{where_p}.qas[{q}]"
                answers = []
                for i, ans in enumerate(_get(qa, "answers", list, where_q, path)):
                    answers.append(_get(ans, "text", str, f"{where_q}.answers[{i}]", path))
                if not answers:
                    raise BadInputError(f"{path}: {where_q}.answers: empty (SQuAD v2 unanswerable questions are "
                                        f"not supported; use --unanswerable)")
                qid = str(qa.get("id", f"{a}-{p}-{q}"))
                ds.items.append(QAItem(qid, _get(qa, "question", str, where_q, path), list(dict.fromkeys(answers)),
                                       [key]))
    if not ds.items:
        raise BadInputError(f"{path}: no questions")
    return ds


# -- HotpotQA ----------------------------------------------------------------------------------------------------
def _hotpot_context(item, where: str, path: Path) -> list[tuple[str, list[str]]]:
    ctx = item.get("context")
    if isinstance(ctx, dict):  # HF datasets style: {title: [...], sentences: [[...], ...]}
        titles = _get(ctx, "title", list, f"{where}.context", path)
        sentences = _get(ctx, "sentences", list, f"{where}.context", path)
        if len(titles) != len(sentences):
            raise BadInputError(f"{path}: {where}.context: {len(titles)} titles but {len(sentences)} paragraphs")
        pairs = list(zip(titles, sentences))
    elif isinstance(ctx, list):  # original: [[title, [sentences]], ...]
        pairs = []
        for i, pair in enumerate(ctx):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise BadInputError(f"{path}: {where}.context[{i}]: expected [title, sentences]")
            pairs.append(tuple(pair))
    else:
        raise BadInputError(f"{path}: {where}.context: missing")
    for i, (title, sents) in enumerate(pairs):
        if not isinstance(title, str) or not isinstance(sents, list) or not all(isinstance(s, str) for s in sents):
            raise BadInputError(f"{path}: {where}.context[{i}]: expected a title and a list of sentences")
    return pairs


def _hotpot_gold(item, where: str, path: Path) -> list[str]:
    facts = item.get("supporting_facts")
    if isinstance(facts, dict):
        titles = _get(facts, "title", list, f"{where}.supporting_facts", path)
    elif isinstance(facts, list) and all(isinstance(f, list) and f for f in facts):
        titles = [f[0] for f in facts]
    else:
        raise BadInputError(f"{path}: {where}.supporting_facts: missing")
    return list(dict.fromkeys(titles))


def load_hotpot(path: Path | str) -> QADataset:
    """HotpotQA (distractor) JSON, a list of questions with context paragraphs and supporting facts. Paragraphs
    are keyed by their Wikipedia title, shared between questions; gold = the supporting facts' titles."""
    path = Path(path).expanduser()
    data = _read_json(path)
    if not isinstance(data, list):
        raise BadInputError(f"{path}: expected a JSON list of questions")
    ds = QADataset(dataset_name(path), str(path), {})
    for n, item in enumerate(data):
        where = f"[{n}]"
        question = _get(item, "question", str, where, path)
        answer = _get(item, "answer", str, where, path)
        keys = {}
        for title, sents in _hotpot_context(item, where, path):
            text = "".join(sents).strip()
            key, i = title, 1
            while key in ds.contexts and ds.contexts[key].text != text:  # same title, other text: keep both
                i += 1
                key = f"{title} ({i})"
            ds.contexts[key] = Document(key, text, title)
            keys[title] = key
        gold = _hotpot_gold(item, where, path)
        unknown = [t for t in gold if t not in keys]
        if unknown:
            raise BadInputError(f"{path}: {where}.supporting_facts: title {unknown[0]!r} is not in its context")
        ds.items.append(QAItem(str(item.get("_id", item.get("id", f"hotpot-{n}"))), question, [answer],
                               [keys[t] for t in gold], str(item.get("type", ""))))
    if not ds.items:
        raise BadInputError(f"{path}: no questions")
    return ds


def load_qa_file(path: Path | str) -> QADataset:
    """SQuAD or HotpotQA, told apart by shape (an object with `data`, or a list of questions)."""
    path = Path(path).expanduser()
    data = _read_json(path)
    if isinstance(data, dict) and "data" in data:
        return load_squad(path)
    if isinstance(data, list):
        return load_hotpot(path)
    raise BadInputError(f"{path}: neither SQuAD (an object with 'data') nor HotpotQA (a list of questions)")
