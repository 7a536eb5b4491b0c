"""The parser child (ingest/isolate.py): it reads files ahead of the ingest loop, answers in order, and a file that
runs past its time limit fails alone (the files queued behind it are asked again, not charged for it)."""

import time

import pytest

from edgerag.ingest import isolate
from edgerag.ingest.isolate import IsolatedParser, TooSlow
from edgerag.ingest.loaders import UnreadableFile


def _texts(folder, n):
    folder.mkdir()
    paths = []
    for i in range(n):
        path = folder / f"note{i}.txt"
        path.write_text(f"Note number {i} is about lighthouse keeper {i}.")
        paths.append(path)
    return paths


def _text(doc) -> str:
    return " ".join(s.text for s in doc.sections)


def test_files_are_parsed_ahead_and_unwanted_answers_dropped(tmp_path):
    paths = _texts(tmp_path / "docs", 5)
    parser = IsolatedParser()
    try:
        for p in paths:
            parser.submit(p)
        deadline = time.monotonic() + 60
        while parser.answers.qsize() < len(paths) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert parser.answers.qsize() == len(paths)  # all parsed before anyone asked for them
        assert "keeper 0" in _text(parser.load(paths[0], 30))
        assert "keeper 3" in _text(parser.load(paths[3], 30))  # 1 and 2 are no longer wanted: dropped
        assert [p for p, _ in parser.in_flight] == [str(paths[4])]
        assert "keeper 1" in _text(parser.load(paths[1], 30))  # asked again after it was dropped
        assert not parser.pending(paths[4])  # the child answered in order: 4 went before the new request for 1
    finally:
        parser.close()


def test_a_slow_file_fails_alone(tmp_path):
    paths = _texts(tmp_path / "docs", 2)
    # lexbor spends minutes in C on 200,000 nested tags: only killing the child stops it
    deep = tmp_path / "docs" / "deep.html"
    deep.write_text("<html><body>" + "<div>" * 200_000 + "x" + "</div>" * 200_000 + "</body></html>")
    missing = tmp_path / "docs" / "gone.txt"
    parser = IsolatedParser()
    try:
        for p in (paths[0], deep, paths[1], missing):
            parser.submit(p)
        assert "keeper 0" in _text(parser.load(paths[0], 30))
        started = time.monotonic()
        with pytest.raises(TooSlow):
            parser.load(deep, 2)
        assert time.monotonic() - started < 15
        assert "keeper 1" in _text(parser.load(paths[1], 30))  # queued behind it: asked again, not charged
        with pytest.raises(UnreadableFile):
            parser.load(missing, 30)
    finally:
        parser.close()


def test_a_second_concurrent_sync_gets_its_own_child():
    with isolate.lease() as first:
        with isolate.lease() as second:
            assert second is not first and first is isolate.shared()
    with isolate.lease() as again:
        assert again is first
