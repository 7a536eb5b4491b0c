"""Every evaluation metric against examples computed by hand (no models, milliseconds)."""

import math

import numpy as np
import pytest

from edgerag.evaluate import metrics as M

# -- answers -----------------------------------------------------------------------------------------------------


def test_squad_normalisation():
    assert M.normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert M.normalize_answer("an apple, a pear and THE plum.") == "apple pear and plum"
    assert M.normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_exact_match_takes_the_best_gold():
    assert M.exact_match("The Denver Broncos.", ["Denver Broncos", "Broncos"]) == 1.0
    assert M.exact_match("Broncos of Denver", ["Denver Broncos"]) == 0.0
    assert M.exact_match("anything", []) == 0.0


def test_token_f1_by_hand():
    # pred {broncos, won, in, denver} vs gold {denver, broncos} ("the" dropped): 2 shared, P = 2/4, R = 2/2
    assert M.token_f1("Broncos won in Denver", ["the Denver Broncos"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    # repeated tokens count with multiplicity: min(2,1) nine + min(1,2) ten = 2 shared, P = R = 2/3
    assert M.token_f1("nine nine ten", ["nine ten ten"]) == pytest.approx(2 / 3)
    # the max over gold answers, and 0 with nothing shared or an empty prediction
    assert M.token_f1("Santa Clara", ["Levi's Stadium", "Santa Clara, California"]) == pytest.approx(0.8)
    assert M.token_f1("Paris", ["London"]) == 0.0
    assert M.token_f1("", ["London"]) == 0.0


def test_contains_answer_is_whole_word_after_normalisation():
    assert M.contains_answer("It was played on February 7, 2016 [1].", ["February 7, 2016"]) == 1.0
    assert M.contains_answer("He played tennis.", ["ten"]) == 0.0
    assert M.contains_answer("No, they were not.", ["no"]) == 1.0
    assert M.contains_answer("anything", [""]) == 0.0


def test_answer_length_ignores_citation_markers():
    assert M.answer_length("Paris is the capital [1][2].") == 4
    assert M.answer_length("On February 7, 2016 [1, 3].") == 4
    assert M.answer_length("") == 0


# -- retrieval ---------------------------------------------------------------------------------------------------
QRELS = {"a": 2, "b": 1, "c": 1, "z": 0}  # z is judged non-relevant
RANKED = ["x", "a", "c", "y", "b"]


def test_ndcg_graded_linear_gain_by_hand():
    dcg = 2 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(6)  # a at rank 2, c at 3, b at 5
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # a, b, c in grade order
    assert M.ndcg_at_k(RANKED, QRELS, 10) == pytest.approx(dcg / ideal)
    assert M.ndcg_at_k(RANKED, QRELS, 10) == pytest.approx(0.68629, abs=1e-5)
    # at k=2 only a counts; the ideal list is cut at 2 as well
    assert M.ndcg_at_k(RANKED, QRELS, 2) == pytest.approx((2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert M.ndcg_at_k(["a", "b", "c"], QRELS, 10) == pytest.approx(1.0)
    assert M.ndcg_at_k(["z", "x"], QRELS, 10) == 0.0
    assert M.ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # no relevant document at all


def test_recall_and_mrr_by_hand():
    assert M.recall_at_k(RANKED, QRELS, 3) == pytest.approx(2 / 3)  # a, c of {a, b, c}
    assert M.recall_at_k(RANKED, QRELS, 10) == 1.0
    assert M.recall_at_k(["z"], QRELS, 10) == 0.0  # grade 0 is not relevant
    assert M.mrr_at_k(RANKED, QRELS, 10) == 0.5
    assert M.mrr_at_k(RANKED, QRELS, 1) == 0.0
    assert M.mrr_at_k(["y", "x", "b"], QRELS, 10) == pytest.approx(1 / 3)


def test_relevant_ranks_give_the_recall_curve():
    ranks = M.relevant_ranks(RANKED, QRELS)
    assert ranks == [2, 3, 5]
    assert M.recall_curve(ranks, 3, [1, 2, 3, 5, 100]) == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    assert M.recall_curve(ranks, 3, [3])[0] == M.recall_at_k(RANKED, QRELS, 3)


# -- citations ---------------------------------------------------------------------------------------------------
def test_citation_precision_and_recall():
    assert M.citation_scores([1, 2], [2, 3]) == (0.5, 0.5)
    assert M.citation_scores([2], [2, 3]) == (1.0, 0.5)
    assert M.citation_scores([], [1]) == (None, 0.0)  # nothing cited: precision undefined
    assert M.citation_scores([1], []) == (0.0, None)  # no relevant source shown: recall undefined


# -- bootstrap ---------------------------------------------------------------------------------------------------
def test_bootstrap_ci_basics():
    est = M.bootstrap_ci([1.0, 1.0, 1.0])
    assert (est.mean, est.lo, est.hi, est.n) == (1.0, 1.0, 1.0, 3)
    # two values: resampled means are 0, .5, 1 with probabilities 1/4, 1/2, 1/4, so the 95% interval is [0, 1]
    est = M.bootstrap_ci([0.0, 1.0], resamples=2000, seed=3)
    assert (est.mean, est.lo, est.hi) == (0.5, 0.0, 1.0)
    assert M.bootstrap_ci([None, 1.0, float("nan")]).n == 1
    assert M.bootstrap_ci([]).mean is None
    assert M.bootstrap_ci([None]).fmt() == "–"


def test_bootstrap_ci_matches_the_normal_approximation():
    values = np.random.default_rng(0).normal(0.5, 0.2, size=400)
    est = M.bootstrap_ci(values, resamples=4000, seed=1)
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert est.lo < values.mean() < est.hi
    assert (est.hi - est.lo) / 2 == pytest.approx(half, rel=0.1)
    assert M.bootstrap_ci(values, seed=5) == M.bootstrap_ci(values, seed=5)  # seeded: reproducible


def test_paired_bootstrap_verdicts():
    base = [0.0] * 50
    assert M.paired_bootstrap(base, [1.0] * 50)[1] == "better"
    assert M.paired_bootstrap([1.0] * 50, base)[1] == "worse"
    assert M.paired_bootstrap(base, base)[1] == "no different"
    # lower is better (e.g. hallucination rate): the same numbers flip
    assert M.paired_bootstrap(base, [1.0] * 50, higher_is_better=False)[1] == "worse"
    # undefined values drop the pair, not just one side
    diff, _ = M.paired_bootstrap([0.0, None, 0.0], [1.0, 1.0, None])
    assert diff.n == 1 and diff.mean == 1.0
    with pytest.raises(ValueError):
        M.paired_bootstrap([1.0], [1.0, 2.0])


def test_pairing_detects_what_separate_intervals_cannot():
    """A consistent +0.01 per question on very different questions: the two unpaired intervals overlap almost
    entirely, the paired interval of the difference excludes zero."""
    base = list(np.random.default_rng(1).uniform(0, 1, size=200))
    cand = [b + 0.01 for b in base]
    a, b = M.bootstrap_ci(base), M.bootstrap_ci(cand)
    assert a.hi > b.lo  # overlapping
    diff, word = M.paired_bootstrap(base, cand)
    assert word == "better" and diff.lo == pytest.approx(0.01)


def test_mixed_pairs_give_no_difference():
    rng = np.random.default_rng(2)
    base = list(rng.integers(0, 2, size=100).astype(float))
    cand = list(rng.permutation(base))  # same accuracy, different questions right
    assert M.paired_bootstrap(base, cand)[1] == "no different"


# -- what the model did vs what the checker did (issue 11) -------------------------------------------------------
def _answer(text, sources):
    from edgerag.generate.answer import Answer, Source
    from edgerag.generate.citations import check_answer

    shown = [Source(i, f"/d/{i}.md", None, None, t, 1.0, 1.0, i) for i, t in enumerate(sources, start=1)]
    return Answer("q", "q", text, shown, sentences=check_answer(text, sources))


def test_check_metrics_separate_model_markers_from_checker_attributions():
    from edgerag.evaluate.metrics import check_metrics

    sources = ["The Aurora K3 carries a two-year limited warranty.", "The hopper holds 250 grams of coffee beans."]
    m = check_metrics(_answer("The Aurora K3 has a two-year limited warranty [1]. The hopper holds 250 grams [1].",
                              sources))
    assert m["model_markers"] == 1.0 and m["model_citation_precision"] == 0.5  # the second [1] is the wrong source
    assert m["attribution_rate"] == 0.0 and m["answer_supported"] == 0.0 and m["answer_contradicted"] == 0.0
    m = check_metrics(_answer("The hopper holds 250 grams of coffee beans.", sources))
    assert m["model_markers"] == 0.0 and m["model_citation_precision"] is None  # no marker: nothing to grade
    assert m["attribution_rate"] == 1.0 and m["answer_supported"] == 1.0  # the checker found the source itself
    m = check_metrics(_answer("The Aurora K3 warranty lasts for 1 year and 20 days [1].", sources))
    assert m["model_citation_precision"] == 0.0 and m["answer_contradicted"] == 1.0
    assert m["checks"][0]["status"] == "contradicted" and m["checks"][0]["reasons"] == ["1 year not in [1]",
                                                                                       "20 days not in [1]"]
    refused = _answer("Not found in your documents.", sources)
    refused.not_found = True
    assert all(v is None for k, v in check_metrics(refused).items() if k != "checks")


def _summary(records_by_system, condition="open"):
    from edgerag.evaluate.qa import metrics_for
    from edgerag.evaluate.report import summarise

    records = [{"system": s, "item_id": i, **r} for s, rows in records_by_system.items() for i, r in enumerate(rows)]
    table, comparisons = summarise(records, "system", "item_id", metrics_for(condition), list(records_by_system),
                                   resamples=200)
    return {"systems": {s: {"metrics": table[s]} for s in records_by_system}, "comparisons": comparisons}


def _rows(n, **values):
    return [{k: (v(i) if callable(v) else v) for k, v in values.items()} for i in range(n)]


def test_gate_guards():
    from edgerag.evaluate.gate import check_guards

    base = _rows(40, f1=0.3, contains=0.5, refusal=lambda i: float(i < 4), model_citation_precision=0.8)
    same = {"base": base, "candidate": base}
    assert all(g.passed for g in check_guards({"open": _summary(same)}))
    assert {(g.condition, g.metric) for g in check_guards({"open": _summary(same)})} == {
        ("open", "f1"), ("open", "contains"), ("open", "refusal"), ("open", "model_citation_precision")}

    # F1 up but refusing 15 points more on answerable questions: the +5-point guard fails
    refuses = _rows(40, f1=0.4, contains=0.5, refusal=lambda i: float(i < 10), model_citation_precision=0.8)
    failed = [g for g in check_guards({"open": _summary({"base": base, "candidate": refuses})}) if not g.passed]
    assert [(g.metric, g.rule) for g in failed] == [("refusal", "+5 points")]
    assert failed[0].describe() == "refusal (open) 10.0 → 25.0: +5 points"
    # 5 points more is allowed
    slightly = _rows(40, f1=0.3, contains=0.5, refusal=lambda i: float(i < 6), model_citation_precision=0.8)
    assert all(g.passed for g in check_guards({"open": _summary({"base": base, "candidate": slightly})}))

    # contains and model-citation precision worse (paired bootstrap), F1 better
    worse = _rows(40, f1=0.6, contains=lambda i: float(i < 5), refusal=lambda i: float(i < 4),
                  model_citation_precision=0.2)
    failed = {g.metric for g in check_guards({"oracle": _summary({"base": base, "candidate": worse})})
              if not g.passed}
    assert failed == {"contains", "model_citation_precision"}

    # correct refusal on the unanswerable set: worse fails, better passes
    refuse_all = _rows(30, refusal=1.0, pipeline_refusal=1.0)
    refuse_few = _rows(30, refusal=lambda i: float(i < 3), pipeline_refusal=1.0)
    guards = check_guards({"open": _summary(same),
                           "unanswerable": _summary({"base": refuse_all, "candidate": refuse_few}, "unanswerable")})
    assert [(g.condition, g.metric) for g in guards if not g.passed] == [("unanswerable", "refusal")]
    assert [g.describe() for g in guards if not g.passed] == ["correct refusal (unanswerable) 100.0 → 10.0: not worse"]
    guards = check_guards({"open": _summary(same),
                           "unanswerable": _summary({"base": refuse_few, "candidate": refuse_all}, "unanswerable")})
    assert all(g.passed for g in guards)


def test_gate_runs_the_unanswerable_set_guards_and_resumes_both(settings, tmp_path):
    from test_evaluate_runs import FAKES, FakeGenerator, FakeSpec, squad_file

    from edgerag.evaluate.datasets import load_squad
    from edgerag.evaluate.gate import gate_generator

    heldout = load_squad(squad_file(tmp_path))
    FAKES["base"], FAKES["candidate"] = FakeGenerator(), FakeGenerator(refuse_all=True)
    events = []
    result = gate_generator(settings, heldout, candidate=FakeSpec(label="candidate"), base=FakeSpec(label="base"),
                            condition="oracle", on_event=events.append)
    assert [e.info for e in events if e.kind == "run"] == [str(result.run_dir)]  # callers remember one run
    assert result.unanswerable["condition"] == "unanswerable"
    failed = {(g.condition, g.metric) for g in result.guards if not g.passed}
    assert failed == {("oracle", "f1"), ("oracle", "contains"), ("oracle", "refusal")}  # refuses answerable ones
    assert any(g.condition == "unanswerable" and g.passed for g in result.guards)
    assert not result.promotable and "refusal (oracle) 0.0 → 100.0: +5 points" in result.failures

    FAKES["base"], FAKES["candidate"] = FakeGenerator(stop_after=0), FakeGenerator(refuse_all=True, stop_after=0)
    again = gate_generator(settings, heldout, candidate=FakeSpec(label="candidate"), base=FakeSpec(label="base"),
                           condition="oracle", resume=result.run_dir)
    assert FAKES["base"].calls == FAKES["candidate"].calls == 0  # both runs were complete: nothing asked again
    assert again.unanswerable["run_dir"] == result.unanswerable["run_dir"] and again.failures == result.failures


def test_restates_counts_answers_made_of_the_questions_own_words():
    question = "Who was 38 in Super Bowl XXXIII?"
    assert M.restates("who was 38 in Super Bowl XXXIII [1].", question)  # v7's echo, marker aside
    assert not M.restates("John Elway was 38 in Super Bowl XXXIII [1].", question)  # 6 of 8 words: an answer
    assert not M.restates("", question) and not M.restates("[1]", question)
