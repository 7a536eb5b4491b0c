"""The improvement loop: synthetic data from a collection → LoRA/QLoRA training → GGUF export → A/B gate.

Everything here imports torch/transformers/peft lazily (the `train` extra); the runtime path never loads it.
"""

# Here, not in data.py, so that the CLI's flag defaults do not import the data code at every start-up.
# Share of examples whose sources do not answer (target: the not-found reply). Measured from the bundled base on
# SmolLM2-135M / XQuAD-en with today's 25-minute budget (docs/results/xquad-finetune-v6, -v7): 0.2 over 79 steps
# refused 76% of answerable questions with the gold passage shown (v6), 0.1 over 83 steps refused 4% (v7). v4's 0.2
# refused nothing only because it started from v3, already trained to answer; v1 (bare-span targets, 0.2) refused 47%.
P_REFUSAL = 0.1
# Seconds of generator-written questions per data run (cloze questions do the rest). Generator questions are real
# paraphrases; cloze questions are the source sentence with the answer blanked, so their targets restate the question.
GENERATOR_SECONDS = 120.0
