"""Metadata filters (`--where`, edgerag/filters.py): the parser, and filters applied inside retrieval.

Real files from ../shared/data (PDF with a duplicated page, PPTX slides, Markdown, text, HTML) and NFCorpus
abstracts, embedded with the deterministic hash embedder of bench/faults.py (no models: these run in seconds). The
CLI test at the end uses the bundled embedder.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, shared
from edgerag.errors import BadInputError
from edgerag.filters import glob_regex, parse_where
from edgerag.ingest.sync import sync
from edgerag.retrieve import Retriever
from edgerag.store import collection as collection_module
from edgerag.store.collection import ChunkRecord, Collection
from edgerag.store.vectors import HnswVectors

sys.path.insert(0, str(REPO / "bench"))
from faults import HashEmbedder  # noqa: E402


class Embedder(HashEmbedder):
    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def ts(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), datetime.min.time()).astimezone().timestamp()


# -- the parser ----------------------------------------------------------------------------------------------
def test_each_key_and_how_they_combine():
    w = parse_where(["ext:PDF,.docx", "ext:pdf", "path:reports/*.pdf", "page:2-3", "page:7",
                     "modified>=2026-01-01", "modified<2026-02-01T12:00:00Z"])
    assert w.exts == ("pdf", "docx") and w.paths == ("reports/*.pdf",) and w.pages == ((2, 3), (7, 7))
    assert w.modified == ((">=", ts("2026-01-01")), ("<", datetime.fromisoformat("2026-02-01T12:00:00+00:00").timestamp()))
    assert str(w) == ("ext:PDF,.docx AND ext:pdf AND path:reports/*.pdf AND page:2-3 AND page:7 AND "
                      "modified>=2026-01-01 AND modified<2026-02-01T12:00:00Z")
    assert parse_where(None) is None and parse_where([]) is None and parse_where(["  "]) is None
    assert parse_where("ext:md").exts == ("md",)  # one string is one expression


def test_a_date_is_a_whole_day():
    day, next_day = ts("2026-01-15"), ts("2026-01-16")
    assert parse_where("modified>2026-01-15").modified == ((">=", next_day),)
    assert parse_where("modified>=2026-01-15").modified == ((">=", day),)
    assert parse_where("modified<2026-01-15").modified == (("<", day),)
    assert parse_where("modified<=2026-01-15").modified == (("<", next_day),)
    assert parse_where("modified:2026-01-15").modified == ((">=", day), ("<", next_day))
    assert parse_where("modified:2026-01-15..2026-01-20").modified == ((">=", day), ("<", ts("2026-01-21")))
    local = datetime(2026, 1, 15, 14, 30).astimezone().timestamp()
    assert parse_where("modified>2026-01-15T14:30").modified == ((">", local),)
    assert parse_where("modified>2026-01-15 14:30").modified == ((">", local),)


@pytest.mark.parametrize("expr,why", [
    ("foo:bar", "unknown key 'foo'"), ("nonsense", "expected KEY:VALUE"), ("ext>pdf", "ext takes ':'"),
    ("path:", "no value"), ("ext:p df", "not an extension"), ("modified>yesterday", "not a date"),
    ("modified>2026-13-01", "not a date"), ("modified:2026-01-05T10:00", "takes a date"),
    ("modified:2026-02-01..2026-01-01", "ends before it starts"), ("page:0", "counted from 1"),
    ("page:5-2", "counted from 1"), ("page:x", "counted from 1"),
])
def test_bad_expressions_name_the_accepted_forms(expr, why):
    with pytest.raises(BadInputError) as err:
        parse_where([expr])
    assert why in str(err.value) and "accepted: path:GLOB; ext:" in str(err.value) and repr(expr) in str(err.value)


@pytest.mark.parametrize("pattern,path,matches", [
    ("*.md", "/home/me/docs/notes/a.md", True),
    ("*.md", "/home/me/docs/notes/a.md.bak", False),
    ("notes/*.md", "/home/me/docs/notes/a.md", True),
    ("notes/*.md", "/home/me/docs/notes/sub/a.md", False),  # * stays within one folder
    ("notes/**/*.md", "/home/me/docs/notes/sub/deeper/a.md", True),
    ("notes/**/*.md", "/home/me/docs/notes/a.md", True),  # ** is zero or more folders
    ("notes", "/home/me/docs/notes/sub/a.md", True),  # a folder matches what is inside it
    ("otes", "/home/me/docs/notes/a.md", False),  # only whole names
    ("/home/me/docs", "/home/me/docs/a.md", True),
    ("/docs", "/home/me/docs/a.md", False),  # an absolute pattern is matched from the root
    ("report-202?.pdf", "/x/report-2025.pdf", True),
    ("report-[!0-9].pdf", "/x/report-1.pdf", False),
    ("mail.eml", "/x/mail.eml::invoice.pdf", True),  # an e-mail's attachments go with it
    ("*.pdf", "/x/mail.eml::invoice.pdf", True),
    ("Warsaw/*", "record://Warsaw/3", True),
])
def test_path_globs(pattern, path, matches):
    import re

    assert (re.search(glob_regex(pattern), path) is not None) is matches


def test_relative_to_the_shell_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_where("path:./reports/").paths == (str(tmp_path / "reports"),)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_where("path:~/x/*.md").paths == (str(tmp_path / "x" / "*.md"),)


# -- filters inside retrieval, on real files ------------------------------------------------------------------
FILES = {"reports": ["pdf/fake-memo-with-duplicate-page.pdf", "pdf/multi-column-2p.pdf"],
         "notes": ["norwich-city.txt", "README.md"], "web": ["example-10k-1p.html"],
         "slides": ["fake-power-point-many-pages.pptx"]}
TIMES = {"reports": "2025-06-01", "notes": "2026-02-01", "web": "2024-01-01", "slides": "2026-03-15"}


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """Six real documents in four folders, each folder's files modified on its own day (noon, local time)."""
    root = tmp_path_factory.mktemp("where")
    source = shared("documents", "unstructured_example_docs")
    for folder, names in FILES.items():
        (root / "docs" / folder).mkdir(parents=True)
        for name in names:
            target = root / "docs" / folder / Path(name).name
            shutil.copy(source / name, target)
            os.utime(target, (ts(TIMES[folder]) + 43200,) * 2)
    embedder = Embedder()
    col = Collection.open(root / "data", "where", embedder.id, create=True)
    report = sync(col, embedder, [root / "docs"], chunk_tokens=60, chunk_overlap=8)
    assert not report.failed and report.summary["added"] == 6
    yield Retriever(col, embedder, candidates=30), root / "docs"
    col.close()


def folders(hits, base: Path) -> set[str]:
    return {Path(h.source.path).relative_to(base).parts[0] for h in hits}


QUERY = "question answering retrieval city football club securities exchange commission memo page"


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("exprs,allowed", [
    (["ext:pdf"], {"reports"}),
    (["ext:md", "ext:txt"], {"notes"}),  # the same key twice: either
    (["path:notes"], {"notes"}),
    (["path:reports/*.pdf", "path:web"], {"reports", "web"}),
    (["modified>2026-01-01"], {"notes", "slides"}),
    (["modified>=2025-06-01", "modified<2026-03-15"], {"reports", "notes"}),  # two bounds: a range
    (["modified:2024-01-01"], {"web"}),
    (["ext:pdf,pptx", "modified>2026-01-01"], {"slides"}),  # different keys: both
])
def test_only_allowed_documents_come_back(docs, mode, exprs, allowed):
    retriever, base = docs
    where = parse_where(exprs)
    hits = retriever.search(QUERY, k=8, mode=mode, where=where)
    assert hits and folders(hits, base) <= allowed
    ids = set(retriever.collection.allowed_texts(where).tolist())
    assert all(h.text_id in ids for h in hits)
    if mode != "bm25":  # dense ranks every allowed text: k come back whenever k exist
        assert len(hits) == min(8, len(ids))


def test_pages_and_the_cited_occurrence(docs):
    retriever, base = docs
    memo = "May 5, 2023 To Whom it May Concern"  # on both pages of the memo: one stored text, two occurrences
    first = retriever.search(memo, k=1, mode="bm25")[0]
    assert first.source.path.endswith("fake-memo-with-duplicate-page.pdf") and first.source.page == 1
    on_page_2 = retriever.search(memo, k=1, mode="bm25", where=parse_where(["page:2", "ext:pdf"]))[0]
    assert on_page_2.text_id == first.text_id and on_page_2.source.page == 2  # cited where the filter allows
    slides = retriever.search("page", k=5, mode="hybrid", where=parse_where(["ext:pptx", "page:2"]))
    assert [h.source.page for h in slides] == [2]


def test_keyword_leg_scores_only_allowed_texts_and_keeps_their_scores(docs):
    retriever, _ = docs
    col = retriever.collection
    where = parse_where("path:notes")
    allowed = col.allowed_texts(where)
    everything = col.bm25(QUERY, 10_000)
    expected = [(t, s) for t, s in everything if t in set(allowed.tolist())][:10]
    assert col.bm25(QUERY, 10, allowed) == expected  # the same scores, only the allowed texts compete
    assert len(expected) == 10 and expected != everything[:10]


def test_a_filter_matching_nothing_says_so(docs):
    retriever, _ = docs
    for expr in ("ext:docx", "path:nowhere", "modified>2030-01-01", "page:99"):
        with pytest.raises(BadInputError) as err:
            retriever.search(QUERY, k=5, where=parse_where(expr))
        message = str(err.value)
        assert f"matches the filter {expr}" in message and "6 documents" in message and "pdf 2" in message
        assert "modified 2024-01-01" in message


def test_retriever_default_filter_is_used_by_ask_and_chat(docs):
    retriever, base = docs
    retriever.where = parse_where("ext:html")
    try:
        assert folders(retriever.search(QUERY, k=5), base) == {"web"}
    finally:
        retriever.where = None


def test_modified_follows_the_files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a.md", "b.md"):
        (folder / name).write_text(f"# {name}\n\nSome words about {name} and the harbour lights.", encoding="utf-8")
    os.utime(folder / "a.md", (ts("2025-01-10"),) * 2)
    os.utime(folder / "b.md", (ts("2026-01-10"),) * 2)
    embedder = Embedder()
    with Collection.open(tmp_path / "data", "m", embedder.id, create=True) as col:
        sync(col, embedder, [folder], 60, 8)
        assert {Path(d.path).name: d.modified for d in col.documents()} == \
               {"a.md": ts("2025-01-10"), "b.md": ts("2026-01-10")}
        late = parse_where("modified>2025-12-31")
        assert {Path(col.hits(col.allowed_texts(late).tolist())[t].path).name
                for t in col.allowed_texts(late).tolist()} == {"b.md"}
        os.utime(folder / "a.md", (ts("2026-02-01"),) * 2)  # touched, same bytes: "unchanged", time recorded
        report = sync(col, embedder, [folder], 60, 8)
        assert report.summary["unchanged"] == 2
        assert col.document(str(folder / "a.md")).modified == ts("2026-02-01")
        assert len(col.allowed_texts(late)) == 2
        # A document ingested before times were recorded (NULL) is judged by its file's time now.
        col.conn.execute("UPDATE documents SET modified = NULL")
        assert len(col.allowed_texts(parse_where("modified>2026-01-31"))) == 1


# -- a restrictive filter on a larger collection: still k results, only allowed ones --------------------------
@pytest.fixture(scope="module")
def nfcorpus(tmp_path_factory):
    """1,000 NFCorpus abstracts (their first 40 words) as the chunks of 100 documents: a one-document filter keeps
    1% of the chunks."""
    with zipfile.ZipFile(shared("retrieval", "beir_nfcorpus", "nfcorpus.zip")) as zf:
        lines = zf.read("nfcorpus/corpus.jsonl").decode().splitlines()[:1000]
        queries = [json.loads(q)["text"] for q in zf.read("nfcorpus/queries.jsonl").decode().splitlines()[::97]]
    texts = list(dict.fromkeys(" ".join(json.loads(line)["text"].split()[:40]) for line in lines))
    embedder = Embedder()
    col = Collection.open(tmp_path_factory.mktemp("nf"), "nf", embedder.id, create=True)
    vectors = embedder.embed(texts)
    for doc in range(100):
        part = range(doc, len(texts), 100)
        chunks = [ChunkRecord(texts[i], None, None, 0, len(texts[i]), 40) for i in part]
        col.write_document(f"/corpus/g{doc:02d}.txt", str(doc), 1, "txt", None, chunks, [None] * len(chunks),
                           {n: vectors[i] for n, i in enumerate(part)}, modified=ts("2026-01-01") + doc)
    col.save()
    yield Retriever(col, embedder, candidates=30), queries
    col.close()


@pytest.mark.parametrize("exact_scan_max", [collection_module.EXACT_SCAN_MAX, 0])  # exact scan; hnswlib's filter
def test_restrictive_filter_keeps_k_results(nfcorpus, monkeypatch, exact_scan_max):
    monkeypatch.setattr(collection_module, "EXACT_SCAN_MAX", exact_scan_max)
    if not exact_scan_max:  # through the graph, with no fallback: hnswlib's filtered search alone finds k
        monkeypatch.setattr(HnswVectors, "_exact", lambda *a: pytest.fail("exact scan used"))
        monkeypatch.setattr(Collection, "_dense_exact", lambda *a: pytest.fail("exact scan used"))
    retriever, queries = nfcorpus
    col = retriever.collection
    where = parse_where("path:/corpus/g07.txt")
    allowed = col.allowed_texts(where)
    assert len(allowed) == 10 and col.counts()["texts"] > 990  # 1%
    embeddings = col.embeddings(allowed.tolist())
    recall = []
    for q in queries:
        for mode in ("dense", "bm25", "hybrid"):
            hits = retriever.search(q, k=5, mode=mode, where=where)
            assert all(h.source.path == "/corpus/g07.txt" for h in hits), (q, mode)
            assert len(hits) == 5 or mode == "bm25", (q, mode)
        qvec = retriever.embedder.embed_one(q)
        truth = allowed[np.argsort(-(embeddings @ qvec), kind="stable")[:5]].tolist()
        got = [t for t, _ in col.dense(qvec, 5, allowed)]
        recall.append(len(set(got) & set(truth)) / 5)
    # exact scan is exact; through the graph the filtered search may differ only by near-ties
    assert np.mean(recall) >= (1.0 if exact_scan_max else 0.95), recall


def test_filter_on_modified_over_many_documents(nfcorpus):
    retriever, _ = nfcorpus
    col = retriever.collection
    start = datetime.fromtimestamp(ts("2026-01-01")).isoformat(timespec="seconds")
    end = (datetime.fromtimestamp(ts("2026-01-01")) + timedelta(seconds=99)).isoformat(timespec="seconds")
    in_range = col.allowed_texts(parse_where([f"modified>={start}", f"modified<{end}"]))
    assert {h.path for h in col.hits(in_range.tolist()).values()} == {f"/corpus/g{d:02d}.txt" for d in range(99)}


# -- the command line -----------------------------------------------------------------------------------------
@pytest.fixture()
def demo(home):
    from edgerag.cli import main

    assert main(["ingest", str(REPO / "docs" / "samples"), "-c", "demo", "--json"]) == 0
    return home


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgerag: error:"), err
    assert all(w in err for w in words), err
    return err


def test_cli_search_where(demo, capsys):
    from edgerag.cli import main

    capsys.readouterr()
    assert main(["search", "warranty meal allowance keeper", "-c", "demo", "--json", "--top-k", "3"]) == 0
    assert {Path(h["path"]).suffix for h in json.loads(capsys.readouterr().out)} != {".md"}
    assert main(["search", "warranty meal allowance keeper", "-c", "demo", "--json", "--top-k", "3",
                 "--where", "ext:md"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and {Path(h["path"]).suffix for h in hits} == {".md"}
    assert main(["search", "warranty", "-c", "demo", "--where", "ext:md", "--where", "modified<2000-01-01"]) == 1
    one_line_error(capsys, "no document in collection 'demo' matches the filter ext:md AND modified<2000-01-01")


def test_cli_bad_filters_fail_before_loading_anything(capsys):
    from edgerag.cli import main

    # `-c nope` does not exist: the filter is checked first, so the error is about the filter
    for cmd in (["search", "q"], ["ask", "q"], ["chat"]):
        assert main([*cmd, "-c", "nope", "--where", "modified>last week"]) == 1
        one_line_error(capsys, "bad filter 'modified>last week'", "accepted: path:GLOB")


@pytest.mark.slow
def test_cli_chat_where_command(demo, capsys, monkeypatch):
    from edgerag.cli import main

    lines = iter(["/where ext:md", "/where page:0", "How long is the Aurora K3 warranty?", "/where", "/quit"])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(lines))
    capsys.readouterr()
    assert main(["chat", "-c", "demo", "--where", "ext:html"]) == 0
    out = capsys.readouterr().out
    assert "matching ext:html" in out and "searching ext:md" in out and "bad filter 'page:0'" in out
    assert "aurora-k3-manual.md" in out and "searching every document" in out


# -- the TUI's filter box -------------------------------------------------------------------------------------
@pytest.fixture()
def bare_settings(tmp_path, monkeypatch):
    """Settings on an empty EDGERAG_HOME: the TUI test's engine is a fake, so no models are needed."""
    from edgerag.config import load_settings

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path / "home"))
    return load_settings()


def test_tui_filter_box(bare_settings):
    settings = bare_settings
    from types import SimpleNamespace

    from test_tui_support import FakeEngine, fake_collection, idle, pilot
    from textual.widgets import Input

    from tui.app import create_app
    from tui.widgets.question_input import QuestionInput

    class Engine(FakeEngine):
        """Records the filter retrieval would have used for each question."""

        def __init__(self):
            super().__init__()
            self.retriever, self.wheres = SimpleNamespace(where=None), []

        def ask(self, question, *args, **kwargs):
            self.wheres.append(self.retriever.where)
            return super().ask(question, *args, **kwargs)

    fake_collection(settings)
    engine = Engine()
    app = create_app(settings, engine_factory=lambda _s, _name: engine)
    shown, notify = [], app.notify  # recorded as raised: on a loaded machine a 3 s toast expires mid-test
    app.notify = lambda message, **kw: (shown.append(message), notify(message, **kw))[1]

    @pilot
    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            await idle(pilot)
            box = app.screen.query_one("#chat-where", Input)
            await pilot.press("ctrl+f", *'ext:pdf "path:my reports/*"', "enter")
            assert "searching ext:pdf AND path:my reports/*" in shown
            assert isinstance(app.focused, QuestionInput)
            await pilot.press(*"warranty?", "enter")
            await idle(pilot)
            assert str(engine.wheres[-1]) == "ext:pdf AND path:my reports/*"
            box.value = "page:0"
            await pilot.press(*"again?", "enter")
            await idle(pilot)
            assert len(engine.wheres) == 1  # a bad filter asks nothing: it says why and waits in the box
            assert any("bad filter 'page:0'" in n for n in shown) and app.focused is box
            box.value = ""
            app.screen.query_one(QuestionInput).focus()
            await pilot.press(*"again?", "enter")
            await idle(pilot)
            assert engine.wheres[-1] is None  # an empty box searches every document

    run()


def test_a_files_time_reaches_its_attachments_only(tmp_path):
    embedder = Embedder()
    with Collection.open(tmp_path, "att", embedder.id, create=True) as col:
        paths = ["/a/m.eml", "/a/m.eml::x.pdf", "/a/m.eml::x.pdf::inner.txt", "/a/m.emlz", "/a/m.eml:z"]
        for p in paths:
            text = f"the text of {p}"
            col.write_document(p, p, 1, "txt", None, [ChunkRecord(text, None, None, 0, len(text), 4)], [None],
                               {0: embedder.embed([text])[0]}, modified=1.0)
        col.set_modified("/a/m.eml", 5.0)
        assert {d.path: d.modified for d in col.documents()} == {**{p: 5.0 for p in paths[:3]}, **{p: 1.0 for p in paths[3:]}}
