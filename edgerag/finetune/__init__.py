"""The improvement loop: synthetic data from a collection → LoRA/QLoRA training → GGUF export → A/B gate.

Everything here imports torch/transformers/peft lazily (the `train` extra); the runtime path never loads it.
"""

# Here, not in data.py, so that the CLI's flag defaults do not import the data code at every start-up.
# Share of examples whose sources do not answer (target: the not-found reply). Measured on SmolLM2-135M / XQuAD-en:
# 0.2 with bare-span targets over 120 steps refused 47% of answerable questions (v1); 0.1 with sentence targets
# over 35 steps never refused, answerable or not (v3, correct refusal 0%); 0.2 for 80 more steps on top of v3 did not
# either (v4, docs/results/xquad-finetune-v4): the share is not what holds refusals back for a 135M model. Showing
# the answering passage with its sentence cut out in half of them (v5) refused 62% of answerable questions.
P_REFUSAL = 0.2
