"""Citation parsing and verification on hand-made examples (no model needed)."""

from edgerag.generate.citations import check_answer, markers, split_sentences, strip_markers

SOURCES = [
    "The Aurora K3 carries a two-year limited warranty from the date of purchase.",
    "The hopper holds 250 grams of whole coffee beans.",
]


def test_markers_and_sentences():
    answer = "The warranty lasts two years [1]. The hopper holds 250 grams [2][1]. See [1, 2]."
    sentences = split_sentences(answer)
    assert len(sentences) == 3
    assert markers(sentences[0]) == [1]
    assert markers(sentences[1]) == [2, 1]
    assert markers(sentences[2]) == [1, 2]
    assert strip_markers(sentences[0]) == "The warranty lasts two years."


def test_supported_unsupported_invalid_and_attributed():
    answer = ("The Aurora K3 has a two-year limited warranty [1]. "
              "The hopper holds 250 grams of beans [1]. "
              "It was designed on the moon by penguins [2]. "
              "The hopper holds 250 grams of coffee beans. "
              "Warranty claims go to the manufacturer [7].")
    checked = check_answer(answer, SOURCES)
    assert checked[0].supported_by == [1] and not checked[0].unsupported
    assert checked[1].cited == [1] and checked[1].supported_by == [] and checked[1].unsupported  # wrong source
    assert checked[2].unsupported
    assert checked[3].attributed and checked[3].supported_by == [2]  # no marker: matched to source 2
    assert checked[4].invalid == [7] and checked[4].unsupported


def test_semantic_support_counts_when_given():
    import numpy as np

    def embed(texts):  # a fake embedder: every text points the same way -> cosine 1
        return np.ones((len(texts), 4)) / 2

    checked = check_answer("Purchases come with twenty-four months of cover [1].", SOURCES, embed=embed)
    assert checked[0].supported_by == [1]
    assert check_answer("Purchases come with twenty-four months of cover [1].", SOURCES)[0].unsupported


def test_short_sentences_are_not_claims():
    checked = check_answer("Yes. The hopper holds 250 grams [2].", SOURCES)
    assert not checked[0].checked and not checked[0].unsupported
    assert checked[1].supported_by == [2]
