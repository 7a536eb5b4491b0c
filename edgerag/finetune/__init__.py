"""The improvement loop: synthetic data from a collection → LoRA/QLoRA training → GGUF export → A/B gate.

Everything here imports torch/transformers/peft lazily (the `train` extra); the runtime path never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import BadInputError

# Here, not in data.py, so that the CLI's flag defaults do not import the data code at every start-up.
# Share of examples whose sources do not answer (target: the not-found reply). Measured from the bundled base on
# SmolLM2-135M / XQuAD-en with today's 25-minute budget (docs/results/xquad-finetune-v6, -v7): 0.2 over 79 steps
# refused 76% of answerable questions with the gold passage shown (v6), 0.1 over 83 steps refused 4% (v7). v4's 0.2
# refused nothing only because it started from v3, already trained to answer; v1 (bare-span targets, 0.2) refused 47%.
# What counts is the refusals' share of the target tokens, so it moves with TARGET_WORDS: with 6-word targets, 0.1
# (12% of examples, 8.8% of target characters) refused 19.3% of answerable oracle questions at one epoch (v14), 0.05
# (5.6%, 4.0%) none (v15), and also refused none of the unanswerable ones (v13 with 0.1 and 12 words: 13%); open
# retrieval F1 18.7 vs v13's 12.1 (docs/results/xquad-finetune-v14).
P_REFUSAL = 0.05
# Refusals as twins: the not-found example repeats the question of an answering example with the answering source
# taken away (the same distractors), so that the only difference between "answer" and "refuse" is whether a source
# holds the answer. Unpaired refusals were learnt as a rate, not a judgement: v13 refused 10.7% of answerable and
# 13% of unanswerable questions (docs/results/xquad-finetune-v14). Twins did not teach the judgement either: v17
# (v14's recipe, 10% not-found, with twins) refused 12.0% of answerable oracle questions (v14: 19.3), 19% of open ones
# (35) and 19% of unanswerable ones (40): all fell together (docs/results/xquad-finetune-v17). Off by default.
REFUSAL_TWINS = False
# Generator-written questions read like real ones; cloze questions (the source sentence with the answer blanked)
# have targets that restate them. Every candidate sentence gets one generator try until GENERATOR_SECONDS are spent,
# a rejected try falls back to cloze, and MAX_EXAMPLES bounds the set (about what a 25-minute CPU budget trains on:
# 80 steps x 4). v7 (120 s, 600 examples): the time box ran out after 258 tries, 9% generator questions, and 42% of
# its answers restated the question; v8 (420 s, 400 examples): every candidate tried in ~3.6 min, 25% generator
# questions, 19% restated, oracle F1 14.0 -> 18.0 (docs/results/xquad-finetune-v8).
# 600 examples (one epoch = 132 steps, which the budget fits on an idle CPU) did no better than 400 at one epoch
# (oracle F1 18.5 vs 20.2, no different) and restated the question in 33% of answers instead of 12%
# (v18, docs/results/xquad-finetune-v17). Again with today's targets (v24: 538 training examples, 107 steps in the
# 25-minute budget): no different from v23 on 300 questions, F1 +0.4 / contains -2.3 with the gold passage
# (docs/results/answer-lead).
GENERATOR_SECONDS = 420.0
MAX_EXAMPLES = 400
# Generator questions per candidate before the cloze fallback (a retry samples hotter). 2 gave 37% generator questions
# instead of 25% on XQuAD-en; trained on (v10, 117 steps) it refused 18.7% of answerable oracle questions against
# v8's 5.3 (80 steps), not yet separated from the steps (docs/results/xquad-finetune-v9), so 1 stays. At one epoch
# (v20: 37% generator questions against v16's 23%, the defaults otherwise) oracle F1 fell 20.2 -> 15.2 (-5.0
# [-9.0, -0.8]) and 29% of answers restated the question instead of 12%, though no more of its targets restated
# their question (docs/results/xquad-finetune-v17).
GENERATOR_TRIES = 1
# Fronted who/what/when/where questions made by rule (questions.py) before the generator's and cloze ones. They did
# not help: with them (45 of 400 questions) the model still refused 8 of 13 oracle "who" questions at 120 steps, and
# at one epoch F1 was 11.7 against v8's 18.0 and more answers restated the question (29.7% vs 19.0)
# (docs/results/xquad-finetune-v11). With today's targets, where such a question's target is the bare answer, they did
# worse still: v25 (44 of 400 questions) against v23, oracle F1 -6.7 [-10.7, -2.8], open -7.8 [-11.4, -4.1]
# (docs/results/answer-lead). Off by default; `--fronted-questions` turns them on.
FRONTED_QUESTIONS = False
# The answer target is the source sentence, or for a longer one a window of at most this many words holding the
# answer span (data.answer_sentence). Replies are graded against 2-3 word gold spans, so a model copying its targets
# perfectly scores, on the 1,145 XQuAD-en questions answered within one sentence, F1 40.0 at 12 words, 57.9 at 6,
# 70.4 at 4, and contains 98.1 at every width (bench/target_bound.py). Trained at one epoch, 6 words lifted oracle F1
# from 15.0 (v13, 12 words) to 20.4 (v14), 20.1 (v15, with P_REFUSAL 0.05) and 20.2 (v16, another seed)
# (docs/results/xquad-finetune-v14).
TARGET_WORDS = 6
# With a time budget, training stops after this many passes over the data even when the budget fits more. The same
# 400 examples (357 for training, 90 steps an epoch at batch 4) trained for 80 steps (v8, 0.9 epochs) refused 5.3% of
# answerable oracle questions, for 120 steps (v11a, 1.3 epochs) 24.7%, F1 18.0 -> 14.6; every run past one epoch
# refused 14-25% (v9, v10, the GPU's 136-700 steps; docs/results/xquad-finetune-v11). On an idle 2-core CPU the
# 25-minute budget fits ~130 steps, on a busy one ~80: without the cap the result depended on the machine's load.
# Capped (v13, the default run: 90 steps on v8's data) it refused 10.7%: most of the rise gone, not all.
MAX_EPOCHS = 1.0
# Where the answering source stands among a training prompt's sources (data.DataConfig.oracle_positions).
# "retrieval" puts it first in 94% of prompts: its markers follow retrieval (open model-citation precision 49.5 ->
# 72.4), but v9 (with 2 generator tries) refused 24.7% of answerable oracle questions, v10 (the same, uniform) 18.7
# (docs/results/xquad-finetune-v9): uniform stays.
ORACLE_POSITION_CHOICES = ("retrieval", "uniform")
ORACLE_POSITIONS = "uniform"


@dataclass(kw_only=True)
class SynthesisOptions:
    """How `finetune data` makes examples: one home for the knobs that data.DataConfig (the synthesis itself) and
    pipeline.FinetuneOptions (`finetune run`, recorded in its options.json) both carry, and the CLI's
    `_data_flags` set."""
    max_examples: int = MAX_EXAMPLES  # validation (held-out documents) and the gate take theirs from these
    use_generator: bool = True  # False: no generator calls (fast, deterministic; used by tests)
    p_refusal: float = P_REFUSAL  # share of examples whose sources do not answer (target: the not-found reply)
    refusal_twins: bool = REFUSAL_TWINS  # a refusal repeats an answering example's question without its source
    # Generator questions read like real ones but cost ~0.5 s (idle 2-core CPU) to minutes (a loaded one) each and
    # ~23% pass the filters: they get a time box, cloze questions do the rest (measured: see GENERATOR_SECONDS).
    generator_seconds: float = GENERATOR_SECONDS
    generator_tries: int = GENERATOR_TRIES  # generator questions per candidate before the cloze fallback
    oracle_positions: str = ORACLE_POSITIONS  # where the answering source stands among the shown ones
    fronted_questions: bool = FRONTED_QUESTIONS  # who/what/when/where questions by rule first, where allowed
    target_words: int = TARGET_WORDS  # a longer source sentence is cut to a window this long around the answer

    def __post_init__(self):
        if self.oracle_positions not in ORACLE_POSITION_CHOICES:
            raise BadInputError(f"oracle_positions must be one of {', '.join(ORACLE_POSITION_CHOICES)}, "
                                f"not {self.oracle_positions!r}")
        if not 0 <= self.p_refusal < 1:
            raise BadInputError(f"p_refusal must be in [0, 1), not {self.p_refusal}")

    def synthesis_options(self) -> dict:
        """These fields alone, as keyword arguments for the other class."""
        return {f.name: getattr(self, f.name) for f in fields(SynthesisOptions)}
