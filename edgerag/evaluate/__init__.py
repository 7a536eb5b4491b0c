"""Evaluation harness: retrieval (BEIR) and answer quality (SQuAD, HotpotQA), run dirs, reports, the A/B gate.

Torch-free like the rest of the runtime path: numpy for the bootstrap, matplotlib (Agg) for plots.

- `retrieval.evaluate_retrieval`  nDCG@10 / Recall@10,100 / MRR@10 per (embedder, mode), with bootstrap CIs
- `qa.evaluate_qa`                EM / F1 / citations / refusals per generator, open-book, oracle or unanswerable
- `gate.gate_generator`, `gate.gate_embedder`   candidate vs base on a held-out set → better / no different / worse
"""
