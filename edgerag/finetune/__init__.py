"""The improvement loop: synthetic data from a collection → LoRA/QLoRA training → GGUF export → A/B gate.

Everything here imports torch/transformers/peft lazily (the `train` extra); the runtime path never loads it.
"""
