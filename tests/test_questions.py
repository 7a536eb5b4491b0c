"""Fronted questions made by rule (finetune/questions.py): real who/when/where questions where a sentence's shape
allows one, and none where it does not (a wrong question teaches worse than a cloze one)."""

from __future__ import annotations

import pytest

from edgerag.finetune.questions import be_question, fronted_questions, normalized, subject_question


@pytest.mark.parametrize("sentence, span, question", [
    ("Marie Curie discovered polonium in 1898 with her husband.", "Marie Curie",
     "Who discovered polonium in 1898 with her husband?"),
    # an institution is asked with "what"; the question stops at the first clause break
    ("The Royal Society published the report in 1665, a year after the fire.", "The Royal Society",
     "What published the report in 1665?"),
    ("Grace Hopper consists of nothing but a name in this test.", "Grace Hopper",
     "Who consists of nothing but a name in this test?"),
])
def test_a_subject_span_makes_a_who_or_what_question(sentence, span, question):
    assert subject_question(sentence, span) == question


@pytest.mark.parametrize("sentence, span", [
    ("In September Paris hosted the final.", "In September"),  # a preposition, not a subject
    ("Earlier Viking settlers had begun arriving in the 880s.", "Earlier Viking"),  # the subject is "settlers"
    ("His Liber servitoris is of particular interest.", "His Liber"),
    ("North of Greater London are the Chiltern Hills.", "North of Greater London"),  # inverted
    ("The report says that Marie Curie discovered polonium.", "Marie Curie"),  # not the sentence's subject
])
def test_no_subject_question_where_the_span_is_not_the_subject(sentence, span):
    assert subject_question(sentence, span) is None


@pytest.mark.parametrize("sentence, span, question", [
    ("The Eiffel Tower was completed in 1889, two years after work began.", "1889",
     "When was the Eiffel Tower completed?"),
    ("The treaty was signed on March 3, 1918 by both sides.", "March 3, 1918", "When was the treaty signed by both sides?"),
    ("The final was played at Wembley Stadium in front of 90,000 people.", "Wembley Stadium",
     "Where was the final played in front of 90,000 people?"),
])
def test_a_date_or_place_after_was_makes_a_when_or_where_question(sentence, span, question):
    assert be_question(sentence, span) == question


@pytest.mark.parametrize("sentence, span", [
    ("The old bridge, which was built in 1850, collapsed in the flood.", "1850"),  # a relative clause
    ("The bridge was rebuilt after the war that ended in 1945.", "1945"),  # not the main clause
    ("The museum opened in 1852 and was enlarged later.", "1852"),  # no was/were before the span
    ("The museum was opened by Queen Victoria.", "Queen Victoria"),  # a name, but not after in/at/near
])
def test_no_be_question_outside_that_shape(sentence, span):
    assert be_question(sentence, span) is None


def test_fronted_questions_are_every_span_the_rules_can_ask_for():
    sentence = "Marie Curie was born in Warsaw Poland in 1867 and moved to Paris."
    found = fronted_questions(sentence)
    assert found == [("Marie Curie", "Who was born in Warsaw Poland in 1867 and moved to Paris?"),
                     ("Warsaw Poland", "Where was Marie Curie born in 1867 and moved to Paris?"),
                     ("1867", "When was Marie Curie born in Warsaw Poland and moved to Paris?")]
    for span, question in found:
        assert span in sentence and normalized(span) not in normalized(question) and question.endswith("?")
