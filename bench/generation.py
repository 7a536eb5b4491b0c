"""Generation speed: decode tokens/s of the `ask` pipeline's generator vs a bare llama-cpp-python call with the
same GGUF, the same prompt (the messages `ask` built) and the same sampler settings. Target: >= 0.97x bare.

Honest by construction: greedy decoding (temperature 0) so both produce the same tokens (checked and printed),
the order alternates (ours first on one question, bare first on the next, swapped each round), one warm-up
round, then 5 measured rounds; the ratio is the median of per-pair ratios with its spread (min–max).
Decode rate = tokens after the first / time after the first token (prompt evaluation excluded).

Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/generation.py
"""

import dataclasses
import statistics
import time

from _common import REPO, bench_home, headline, report

QUESTIONS = ["How long does the Aurora K3 warranty last?", "What is the daily meal allowance outside the EU?",
             "Who built the Old Harbour Lighthouse?", "How do I clean the burrs?"]
ROUNDS = 5


def main() -> None:
    bench_home()
    from llama_cpp import Llama

    from edgerag.config import load_settings
    from edgerag.ingest import ingest
    from edgerag.models import ModelStore
    from edgerag.runtime import build_engine

    settings = dataclasses.replace(load_settings(), temperature=0.0)  # greedy: identical outputs to compare
    ingest(settings, [REPO / "docs" / "samples"], "bench-demo")
    engine = build_engine(settings, "bench-demo")
    store = ModelStore(settings.models_dir)
    bare = Llama(model_path=str(store.main_path(store.active_name("generator"))), n_ctx=settings.context_tokens,
                 n_threads=settings.n_threads, n_batch=512, seed=settings.seed, verbose=False)
    captured: dict = {}
    original = engine.generator.stream_chat

    def spy(messages, **kw):
        captured["messages"] = messages
        return original(messages, **kw)

    engine.generator.stream_chat = spy

    def ours(q):
        answer = engine.ask(q)
        t = answer.timings
        return t.get("completion_tokens", 0), t.get("generate_s", 0) - (t.get("first_token_s", 0) - t["retrieve_s"]), \
            answer.text

    def baseline(q):
        t0 = time.perf_counter()
        first, pieces = None, []
        for chunk in bare.create_chat_completion(messages=captured[q], max_tokens=settings.max_tokens,
                                                 temperature=0.0, top_k=40, top_p=0.95, repeat_penalty=1.1,
                                                 stream=True):
            if piece := chunk["choices"][0]["delta"].get("content"):
                first = first or time.perf_counter()
                pieces.append(piece)
        return len(pieces), (time.perf_counter() - (first or t0)), "".join(pieces).strip()

    for q in QUESTIONS:  # the prompts `ask` builds (retrieval included), captured once
        captured.pop("messages", None)
        engine.ask(q)
        if "messages" in captured:
            captured[q] = captured["messages"]
    questions = [q for q in QUESTIONS if q in captured]
    ratios, ours_rates, bare_rates, same = [], [], [], 0
    for round_ in range(ROUNDS + 1):  # round 0 warms both up
        for i, q in enumerate(questions):
            runs = {}
            order = [("ours", ours), ("bare", baseline)]
            for name, fn in (order if (round_ + i) % 2 == 0 else order[::-1]):
                runs[name] = fn(q)
            if round_ == 0:
                continue
            (n_o, s_o, text_o), (n_b, s_b, text_b) = runs["ours"], runs["bare"]
            rate_o, rate_b = n_o / s_o, n_b / s_b
            ours_rates.append(rate_o)
            bare_rates.append(rate_b)
            ratios.append(rate_o / rate_b)
            same += text_o == text_b
    med = statistics.median(ratios)
    report(f"generation decode tokens/s, same GGUF and prompts, greedy, {ROUNDS} rounds x {len(questions)} "
           "questions, order alternating", [
               ("edgerag ask pipeline", f"median {statistics.median(ours_rates):.1f} tok/s "
                                        f"(min {min(ours_rates):.1f}, max {max(ours_rates):.1f})"),
               ("bare llama-cpp-python (baseline)", f"median {statistics.median(bare_rates):.1f} tok/s "
                                                    f"(min {min(bare_rates):.1f}, max {max(bare_rates):.1f})"),
               ("ratio, median of pairs (target >= 0.97)", f"{med:.3f}x (min {min(ratios):.3f}, max {max(ratios):.3f})"),
               ("identical outputs (greedy)", f"{same}/{len(ratios)}"),
           ])
    headline("generation decode speed, `ask` / bare llama-cpp-python", med, "x", 0.97, lower_is_better=False,
             baseline=1.0, baseline_name="bare llama-cpp-python",
             detail=f"{statistics.median(ours_rates):.1f} vs {statistics.median(bare_rates):.1f} tok/s, "
                    f"identical outputs {same}/{len(ratios)}")


if __name__ == "__main__":
    main()
