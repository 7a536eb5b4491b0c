"""Citation parsing and fact-level verification on hand-made and adversarial examples (no model needed)."""

import pytest

from edgerag.generate.citations import check_answer, markers, split_answer, strip_markers
from edgerag.text import names, quantities, split_sentences

SOURCES = [
    "The Aurora K3 carries a two-year limited warranty from the date of purchase.",
    "The hopper holds 250 grams of whole coffee beans.",
]
MANUAL = ("Do not wash the burrs with water: moisture makes them rust. The hopper and the grounds bin can be "
          "washed by hand in warm soapy water; they are not dishwasher safe.")
SUPER_BOWL = ("Super Bowl 50 was an American football game. The American Football Conference (AFC) champion "
              "Denver Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24–10 "
              "to earn their third Super Bowl title. The game was played on February 7, 2016, at Levi's Stadium "
              "in Santa Clara, California.")


def sentences_of(answer):
    return [s for s, _ in split_answer(answer)]


def test_markers_and_sentences():
    answer = "The warranty lasts two years [1]. The hopper holds 250 grams [2][1]. See [1, 2]."
    sentences = sentences_of(answer)
    assert len(sentences) == 3
    assert markers(sentences[0]) == [1]
    assert markers(sentences[1]) == [2, 1]
    assert markers(sentences[2]) == [1, 2]
    assert strip_markers(sentences[0]) == "The warranty lasts two years."


@pytest.mark.parametrize("written, numbers", [
    ("[1][2]", [1, 2]), ("[1-3]", [1, 2, 3]), ("[1–3]", [1, 2, 3]), ("[1, 2]", [1, 2]), ("[1; 3]", [1, 3]),
    ("[ 2 ]", [2]), ("[1-3, 5]", [1, 2, 3, 5]), ("[1-500]", [1, 500]), ("[3][3]", [3]),
    # a bracketed date a small model wrote (it crashed the answer pipeline), and a chained range
    ("[3-03-24]", [3, 24]), ("[1-2-3]", [1, 2, 3]),
])
def test_marker_forms(written, numbers):
    assert markers(f"The hopper holds 250 grams {written}.") == numbers


def test_marker_after_a_newline_attaches_to_the_previous_sentence():
    answer = "Swallows return every spring.\n[1] (birds.md, Migration) The swallows return every spring."
    parts = split_answer(answer)
    assert markers(parts[0][0]) == [1] and parts[0][1]
    assert not parts[1][1]  # the echoed source line is not a claim
    checked = check_answer(answer, ["The swallows return every spring to the old barn."])
    assert checked[0].cited == [1] and checked[0].supported_by == [1] and not checked[0].attributed
    assert checked[1].status == "unchecked"


def test_echoed_source_lines_are_not_claims():
    answer = ("The swallows return every spring.\n[1] (birds.md, Migration) The swallows return every spring. "
              "They nest in barns.\n[2] (other.md) Something else entirely. It rains.")
    parts = split_answer(answer)
    assert [claim for _, claim in parts] == [True, False, False]
    assert markers(parts[0][0]) == [1]  # the first echo's marker closes the answer; the second is only a listing
    checked = check_answer(answer, ["The swallows return every spring to the old barn.", "Rain."])
    assert [c.status for c in checked] == ["supported", "unchecked", "unchecked"]


def test_marker_at_sentence_start():
    assert markers(sentences_of("[2] The hopper holds 250 grams.")[0]) == [2]
    # "… grinder. [2] The hopper …": the marker closes the sentence before it, which had none
    first, second = sentences_of("The K3 is a coffee grinder. [2] The hopper holds 250 grams.")
    assert markers(first) == [2] and markers(second) == []
    # the previous sentence is already cited: the marker belongs to the sentence it opens
    first, second = sentences_of("The K3 is a coffee grinder [1]. [2] The hopper holds 250 grams.")
    assert markers(first) == [1] and markers(second) == [2]


def test_abbreviations_and_decimals_do_not_split():
    text = ("Dr. Smith met Mr. Jones at 3.5 p.m. on Jan. 5. They talked, e.g. about coffee, i.e. espresso. "
            "J. K. Rowling wrote it. The U.S. Army was founded in 1775. Convention No. 81 applies. It ended.[1] Next.")
    assert split_sentences(text) == [
        "Dr. Smith met Mr. Jones at 3.5 p.m. on Jan. 5.", "They talked, e.g. about coffee, i.e. espresso.",
        "J. K. Rowling wrote it.", "The U.S. Army was founded in 1775.", "Convention No. 81 applies.",
        "It ended.[1]", "Next."]
    assert split_sentences("The answer is no. The next one, etc. Then. So did I. Fine!") == [
        "The answer is no.", "The next one, etc.", "Then.", "So did I.", "Fine!"]


def test_quantities_are_normalised():
    def values(text):
        return [(q.value, q.unit) for q in quantities(text)]

    assert values("a two-year warranty") == [(2, "year")]
    assert values("2 years, 24 months, twenty-four months") == [(2, "year"), (24, "month"), (24, "month")]
    assert values("2,000 people paid $5 and 2.5 million euros") == [(2000, None), (5, "usd"), (2.5e6, "eur")]
    assert values("It holds 250 grams, or 250 g; one of the best") == [(250, "g"), (250, "g")]
    assert [n.surface for n in names("The Carolina Panthers lost to Denver. Denver won.")] == \
        ["Carolina Panthers", "Denver"]  # a lone capitalised first word is not taken for a name


def test_supported_unsupported_invalid_and_attributed():
    answer = ("The Aurora K3 has a two-year limited warranty [1]. "
              "The hopper holds 250 grams of beans [1]. "
              "It was designed on the moon by penguins [2]. "
              "The hopper holds 250 grams of coffee beans. "
              "Warranty claims go to the manufacturer [7].")
    checked = check_answer(answer, SOURCES)
    assert checked[0].supported_by == [1] and checked[0].status == "supported"
    assert checked[1].cited == [1] and checked[1].supported_by == [] and checked[1].unsupported  # wrong source
    assert checked[2].unsupported and checked[2].reasons == ["[2] is about something else"]
    assert checked[3].attributed and checked[3].supported_by == [2]  # no marker: matched to source 2
    assert checked[4].invalid == [7] and checked[4].unsupported
    assert "[7] is not one of the sources" in checked[4].reasons


def test_wrong_number_is_contradicted_with_the_reason():
    """The TUI example from issue 11: high word overlap, wrong number."""
    checked = check_answer("The Aurora K3 warranty lasts for 1 year and 20 days [1].", SOURCES)
    assert checked[0].status == "contradicted"
    assert checked[0].reasons == ["1 year not in [1]", "20 days not in [1]"]
    # the same facts, written differently, pass
    for ok in ("The Aurora K3 warranty lasts two years [1].", "The Aurora K3 has a 2-year warranty [1].",
               "The Aurora k3 has a two year limited warranty [1]."):
        assert check_answer(ok, SOURCES)[0].status == "supported", ok
    assert check_answer("The hopper holds 2500 grams of whole coffee beans [2].", SOURCES)[0].reasons == \
        ["2500 grams not in [2]"]
    assert check_answer("The hopper holds 250 kg of whole coffee beans [2].", SOURCES)[0].status == "contradicted"


def test_wrong_number_without_a_marker_is_not_attributed():
    checked = check_answer("The Aurora K3 carries a three-year limited warranty.", SOURCES)
    assert checked[0].status == "contradicted" and not checked[0].attributed
    assert checked[0].reasons == ["three-year not in [1]"]


def test_a_number_from_elsewhere_in_the_source_is_contradicted():
    """Small models often copy the wrong number of the right passage: 9 is in the source, but it counts starts."""
    source = "Linebacker Thomas Davis led the team with 136 tackles, and defensive end Kony Ealy had 6 sacks in just 9 starts."
    assert check_answer("Kony Ealy had 6 sacks [1].", [source])[0].status == "supported"
    wrong = check_answer("Kony Ealy had 9 sacks [1].", [source])[0]
    assert wrong.status == "contradicted" and wrong.reasons == ["9 sacks not in [1]"]
    assert check_answer("Ealy started 9 games [1].", [source])[0].status == "supported"  # a paraphrase: no number
    # about "games" in the source, so 9 is not bound to anything else


def test_swapped_entity_is_contradicted():
    ok = check_answer("The Denver Broncos defeated the Carolina Panthers 24–10 [1].", [SUPER_BOWL])
    assert ok[0].status == "supported"
    swapped = check_answer("The Denver Broncos defeated the Seattle Seahawks 24–10 [1].", [SUPER_BOWL])
    assert swapped[0].status == "contradicted" and swapped[0].reasons == ["Seattle Seahawks not in [1]"]
    date = check_answer("The game was played on February 8, 2016 at Levi's Stadium [1].", [SUPER_BOWL])
    assert date[0].reasons == ["8 not in [1]"]
    place = check_answer("The game was played at Levi's Stadium in San Diego, California [1].", [SUPER_BOWL])
    assert place[0].reasons == ["San Diego not in [1]"]


def test_source_that_says_the_opposite():
    checked = check_answer("You can wash the burrs with water [1]. The hopper is dishwasher safe [1]. "
                           "Do not wash the burrs with water [1].", [MANUAL])
    assert [c.status for c in checked] == ["contradicted", "contradicted", "supported"]
    assert checked[0].reasons == ["[1] says otherwise: “Do not wash the burrs with water: moisture makes them rust.”"]


def test_facts_may_come_from_several_cited_sources():
    sources = ["The Aurora K3 was designed in Turin.", "The Aurora K3 was designed in 2019 by a small team."]
    assert check_answer("The Aurora K3 was designed in 2019 in Turin [1][2].", sources)[0].supported_by == [1, 2]


def test_semantic_support_counts_when_given():
    import numpy as np

    def embed(texts):  # a fake embedder: every text points the same way -> cosine 1
        return np.ones((len(texts), 4)) / 2

    checked = check_answer("Purchases come with twenty-four months of cover [1].", SOURCES, embed=embed)
    assert checked[0].status == "contradicted" and checked[0].reasons == ["twenty-four months not in [1]"]
    checked = check_answer("Purchases come with cover against defects [1].", SOURCES, embed=embed)
    assert checked[0].supported_by == [1]
    assert check_answer("Purchases come with cover against defects [1].", SOURCES)[0].unsupported


def test_short_sentences_are_not_claims_but_bare_facts_are():
    checked = check_answer("Yes. The hopper holds 250 grams [2].", SOURCES)
    assert not checked[0].checked and not checked[0].unsupported
    assert checked[1].supported_by == [2]
    assert check_answer("250 grams [2]", SOURCES)[0].status == "supported"
    assert check_answer("300 grams [2]", SOURCES)[0].status != "supported"


def test_a_short_answer_is_checked_as_the_answer_to_its_question():
    video = ("The restored video, remaining in black and white, contains conservative digital enhancements and did "
             "not include sound.")
    sources = [video, SUPER_BOWL]
    asked = "What colour is the restored video?"
    # alone, "black and white" is read as a claim, and against the negated passage as its opposite
    assert check_answer("black and white [1].", sources)[0].status == "contradicted"
    assert not check_answer("March [1].", sources)[0].checked  # and a single word is no claim at all
    checked = check_answer("black and white [1].", sources, question=asked)
    assert checked[0].status == "supported" and checked[0].supported_by == [1]
    checked = check_answer("in sepia [1].", sources, question=asked)  # a word the source never says
    assert checked[0].status == "contradicted" and checked[0].reasons == ["“sepia” not in [1]"]
    checked = check_answer("black and white [2].", sources, question=asked)  # the other source is not about it
    assert checked[0].reasons == ["[2] is about something else"]
    where = "Where was Super Bowl 50 played?"
    assert check_answer("Levi's Stadium [2].", sources, question=where)[0].supported_by == [2]
    assert check_answer("at Levi's Stadium.", sources, question=where)[0].attributed  # no marker: found by us
    assert check_answer("Gillette Stadium [2].", sources, question=where)[0].status == "contradicted"
    checked = check_answer("the restored video [1].", sources, question=asked)  # words the question says
    assert checked[0].status == "unsupported" and checked[0].reasons == ["it repeats the question"]
    choice = "Did the video get colour or did it remain black and white?"  # its answer is the question's words
    assert check_answer("black and white [1].", sources, question=choice)[0].supported_by == [1]
    # a yes or no is no copy of a source: left unchecked, as without the question
    assert [c.status for c in check_answer("Yes. No [1].", sources, question=asked)] == ["unchecked"] * 2
    # a longer sentence is a claim of its own: the question does not change how it is judged
    long = "The game was played at Levi's Stadium in Santa Clara [2]."
    assert check_answer(long, sources, question=where)[0].supported_by == check_answer(long, sources)[0].supported_by


def test_a_short_answers_number_counts_what_its_question_asks():
    """XQuAD answers v23 wrote: "18 [1]." for the seconds left (the source's 18 is the score), "3 [1]." for a
    source saying "three" (its digit is no word of the source, but the same number)."""
    game = ("They beat the New England Patriots in the AFC Championship Game, 20–18, by intercepting a pass on New "
            "England's 2-point conversion attempt with 17 seconds left on the clock.")
    seconds = "How many seconds were left in the game when the Patriots failed their 2-point conversion?"
    checked = check_answer("18 [1].", [game], question=seconds)[0]
    assert checked.status == "contradicted" and checked.reasons == ["18 seconds not in [1]"]
    assert check_answer("18 [1].", [game])[0].supported_by == [1]  # without the question: the source states 18
    assert check_answer("17 [1].", [game], question=seconds)[0].supported_by == [1]
    assert check_answer("seventeen [1].", [game], question=seconds)[0].supported_by == [1]
    assert check_answer("18 [1].", [game], question="What was the Patriots' score?")[0].supported_by == [1]
    lineages = "All primary chloroplasts belong to one of three chloroplast lineages."
    how_many = "How many chloroplast lineages are there?"
    assert check_answer("3 [1].", [lineages], question=how_many)[0].supported_by == [1]
    assert check_answer("4 [1].", [lineages], question=how_many)[0].status == "contradicted"
    goals = ["He scored three goals in the final."]  # a bare "one" is no number to the fact test: the word test has it
    scored = "How many goals did he score?"
    assert check_answer("One [1].", goals, question=scored)[0].reasons == ["“one” not in [1]"]
    vote = "At the referendum of 1 March 1979, 32.9% of the electorate did not vote and 40% was required."
    asked = "What percentage of the electorate did not vote?"
    assert check_answer("32.9% [1].", [vote], question=asked)[0].supported_by == [1]
    assert check_answer("40 [1].", [vote], question=asked)[0].supported_by == [1]
    assert check_answer("1 [1].", [vote], question=asked)[0].reasons == ["1 percent not in [1]"]
    # what binds nothing: an answer that says what it counts, a year, a counted thing, an ambiguous unit
    engine = "The efficiency of the steam engine reaches some 27-30% on high-pressure engines."
    assert check_answer("27-30% [1].", [engine], question="What percentage efficiency does the engine reach?"
                        )[0].supported_by == [1]
    served = "He served two terms of four years, from 1939 to 1947."
    assert check_answer("two terms [1].", [served], question="How many years did he serve?")[0].supported_by == [1]
    assert check_answer("1939 to 1947 [1].", [served], question="How many years did he serve?")[0].supported_by == [1]
    attack = "The attack killed 7 and injured 12 people."
    killed = "How many people were killed in the attack?"
    assert check_answer("7 [1].", [attack], question=killed)[0].supported_by == [1]
    ticket, pounds = "The ticket for the match cost £5.", "How many pounds did the match ticket cost?"
    assert check_answer("5 [1].", [ticket], question=pounds)[0].supported_by == [1]


def test_issue_example_is_flagged_in_the_cli_json_and_tui(capsys):
    """"How long does the Aurora K3 warranty last?" answered with the wrong number: every shell shows why."""
    from types import SimpleNamespace

    import numpy as np

    from edgerag.cli.ask_cmd import _answer_json, _print_answer
    from edgerag.generate.answer import Answer, AnswerEngine, Source
    from tui.widgets.answer_view import render_answer

    embedder = SimpleNamespace(embed=lambda texts: np.ones((len(texts), 4)) / 2)  # cosine 1: overlap is no issue
    engine = AnswerEngine(SimpleNamespace(embedder=embedder), None, SimpleNamespace(retrieve_mode="hybrid", top_k=3))
    source = Source(1, "/docs/aurora-k3-manual.md", None, "Warranty", SOURCES[0], 0.9, 0.7, 1)
    answer = Answer("How long does the Aurora K3 warranty last?", "q",
                    "The Aurora K3 warranty lasts for 1 year and 20 days.\n[1] (aurora-k3-manual.md, Warranty) The "
                    "Aurora K3 carries a two-year limited warranty", [source])
    engine._check(answer)
    assert not answer.grounded and [s.status for s in answer.flagged] == ["contradicted"]
    assert answer.citations[0].number == 1 and not answer.citations[0].supported and not answer.citations[0].attributed
    assert answer.citations[0].reasons == ["1 year not in [1]", "20 days not in [1]"]

    data = _answer_json(answer)
    assert data["sentences"][0]["status"] == "contradicted"
    assert data["sentences"][0]["reasons"] == ["1 year not in [1]", "20 days not in [1]"]
    _print_answer(answer)
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "does not support the sentence citing it: 1 year not in [1]; 20 days not in [1]" in out
    assert "contradicted: 1 year not in [1]; 20 days not in [1]" in out
    shown = render_answer(answer).plain
    assert "contradicted: 1 year not in [1]; 20 days not in [1]" in shown and "no sentence" in shown

    # the same answer without any marker: the source that contradicts it is still shown, as edgerag's match
    answer = Answer(answer.question, "q", "The Aurora K3 warranty lasts for 1 year and 20 days.", [source])
    engine._check(answer)
    assert answer.flagged[0].status == "contradicted" and answer.flagged[0].against == [1]
    c = answer.citations[0]
    assert (c.number, c.supported, c.attributed, c.reasons) == (1, False, True, ["1 year not in [1]", "20 days not in [1]"])
    _print_answer(answer)
    out = " ".join(capsys.readouterr().out.split())
    assert "does not support the answer's sentence it was matched to: 1 year not in [1]" in out
