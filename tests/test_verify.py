"""`edgerag verify` on the demo collection (docs/samples, the real embedder; no generator needed)."""

import json
from pathlib import Path

import pytest

from edgerag.cli import main

REPO = Path(__file__).resolve().parents[1]
WRONG = "The Aurora K3 warranty lasts for 1 year and 20 days."


@pytest.fixture()
def demo(settings):
    assert main(["ingest", str(REPO / "docs" / "samples"), "-c", "demo", "--json"]) == 0
    return settings


@pytest.fixture()
def retriever(demo):
    from edgerag.retrieve import Retriever
    from edgerag.runtime import open_collection

    collection, embedder = open_collection(demo, "demo")
    with collection:
        yield Retriever.from_settings(collection, embedder, demo)


def test_verify_statuses_and_reasons(retriever):
    from edgerag.generate.verify import verify_text

    report = verify_text(f"{WRONG} The Aurora K3 carries a two-year limited warranty. "
                         "Do not wash the burrs with water [3]. The burrs can be washed with water. "
                         "Yes. Penguins designed the moon base in Atlantis.", retriever)
    statuses = [s.status for s in report.sentences]
    assert statuses == ["contradicted", "supported", "supported", "contradicted", "unchecked", "unsupported"]
    wrong = report.sentences[0]
    label = wrong.evidence.label
    assert label.startswith("aurora-k3-manual.md") and label.endswith("Warranty")
    assert wrong.reasons == ["1 year not in aurora-k3-manual.md › Warranty", "20 days not in aurora-k3-manual.md › "
                                                                           "Warranty"]
    assert "two-year" in wrong.evidence.passage
    assert report.sentences[2].text == "Do not wash the burrs with water."  # someone else's marker is ignored
    assert "says otherwise" in report.sentences[3].reasons[0]
    assert report.counts == {"supported": 2, "contradicted": 2, "unsupported": 1, "unchecked": 1}
    assert not report.all_supported


def test_verify_cli_text_file_and_json(demo, tmp_path, capsys):
    assert main(["verify", WRONG, "-c", "demo"]) == 1  # exit 1: something is not supported
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "contradicted" in out and "1 year not in aurora-k3-manual.md › Warranty" in out
    assert "carries a two-year limited warranty" in out  # the passage it was judged against

    draft = tmp_path / "draft.txt"
    draft.write_text("The hopper holds 250 grams of whole coffee beans.\nThere are 40 click settings.\n")
    assert main(["verify", str(draft), "-c", "demo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["status"] for s in data["sentences"]] == ["supported", "supported"]
    assert data["counts"]["supported"] == 2 and data["all_supported"] is True
    assert data["sentences"][0]["evidence"]["heading"].endswith("Getting started")


def test_verify_bad_input(demo, tmp_path, capsys):
    assert main(["verify", "   ", "-c", "demo"]) == 1
    assert "nothing to verify" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00\x81 not utf-8")
    assert main(["verify", str(bad), "-c", "demo"]) == 1
    assert "cannot read it as UTF-8" in capsys.readouterr().err
    assert main(["verify", WRONG, "-c", "nosuch"]) != 0
    assert main(["verify", WRONG, "-c", "demo", "--top-k", "0"]) == 1
