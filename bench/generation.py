"""Generation speed: tokens/s of the `ask` pipeline's generator vs a bare llama-cpp-python call with the same
GGUF, the same prompt (messages) and the same sampling settings. Target: >= 0.97x bare.

Run: .venv/bin/python bench/generation.py
"""

import time

from _common import REPO, bench_home, report

QUESTIONS = ["How long does the Aurora K3 warranty last?", "What is the daily meal allowance outside the EU?",
             "Who built the Old Harbour Lighthouse?", "How do I clean the burrs?"]


def main() -> None:
    bench_home()
    from llama_cpp import Llama

    from edgerag.config import load_settings
    from edgerag.ingest import ingest
    from edgerag.models import ModelStore
    from edgerag.runtime import build_engine

    settings = load_settings()
    ingest(settings, [REPO / "docs" / "samples"], "bench-demo")
    engine = build_engine(settings, "bench-demo")
    path = ModelStore(settings.models_dir).main_path(ModelStore(settings.models_dir).active_name("generator"))
    bare = Llama(model_path=str(path), n_ctx=settings.context_tokens, n_threads=settings.n_threads, n_batch=512,
                 seed=settings.seed, verbose=False)
    ours_tok = ours_s = bare_tok = bare_s = 0.0
    for round_ in range(2):
        for q in QUESTIONS:
            captured = {}
            original = engine.generator.stream_chat

            def spy(messages, **kw):
                captured["messages"] = messages
                return original(messages, **kw)

            engine.generator.stream_chat = spy
            answer = engine.ask(q)
            engine.generator.stream_chat = original
            if "messages" not in captured:
                continue
            if round_:  # first round warms both up
                ours_tok += answer.timings["completion_tokens"]
                ours_s += answer.timings["generate_s"] - (answer.timings["first_token_s"] - answer.timings["retrieve_s"])
            t0 = time.perf_counter()
            first = None
            n = 0
            for chunk in bare.create_chat_completion(messages=captured["messages"], max_tokens=settings.max_tokens,
                                                     temperature=settings.temperature, top_k=40, top_p=0.95,
                                                     repeat_penalty=1.1, stream=True):
                if chunk["choices"][0]["delta"].get("content"):
                    first = first or time.perf_counter()
                    n += 1
            if round_ and first:
                bare_tok += n
                bare_s += time.perf_counter() - first
    ours, base = ours_tok / ours_s, bare_tok / bare_s
    report("generation tokens/s (after the first token), same GGUF and prompts", [
        ("edgerag ask pipeline", f"{ours:.1f} tok/s over {ours_tok:.0f} tokens"),
        ("bare llama-cpp-python (baseline)", f"{base:.1f} tok/s over {bare_tok:.0f} tokens"),
        ("ratio (target >= 0.97)", f"{ours / base:.3f}x"),
    ])


if __name__ == "__main__":
    main()
