"""Time to first token through `edgerag serve` (official openai client, streaming, loopback HTTP) vs `ask`
in-process (AnswerEngine.ask, first on_token call), same bundled models, collection and questions.

Both sides run the whole pipeline (question embedding, hybrid retrieval, prompt, llama.cpp prefill) and both
keep llama.cpp's prefix cache between questions; they alternate question by question, never overlapping. The
first round warms both up and is not counted. Answers are capped at MAX_TOKENS on both sides: the first token
is what is timed, and the cap keeps the run short on a shared 2-core machine.

Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/serve.py   (or `make bench`, which runs it too)
"""

import statistics
import time

from _common import REPO, bench_home, report

QUESTIONS = ["How long does the Aurora K3 warranty last?", "What is the daily meal allowance outside the EU?",
             "Who built the Old Harbour Lighthouse?", "How do I clean the burrs?",
             "How many grind settings does the grinder have?", "What must I do before removing the upper burr?"]
ROUNDS = 3  # the first is warm-up
MAX_TOKENS = 48


def ask_ttft(engine, question: str) -> float:
    first: list[float] = []
    t0 = time.perf_counter()
    engine.ask(question, on_token=lambda _t: first or first.append(time.perf_counter()))
    return first[0] - t0


def served_ttft(client, question: str) -> float:
    t0 = time.perf_counter()
    first = None
    stream = client.chat.completions.create(model="rag:bench-demo", stream=True,
                                            messages=[{"role": "user", "content": question}])
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    return first - t0


def main() -> None:
    bench_home()
    import openai

    from edgerag.config import load_settings, replace
    from edgerag.ingest import ingest
    from edgerag.runtime import build_engine
    from edgerag.serve import serve_in_thread

    settings = replace(load_settings(), max_tokens=MAX_TOKENS)
    ingest(settings, [REPO / "docs" / "samples"], "bench-demo")
    engine = build_engine(settings, "bench-demo")
    server = serve_in_thread(settings)
    client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120)
    ours, served = [], []
    try:
        for round_ in range(ROUNDS):
            for q in QUESTIONS:
                a, s = ask_ttft(engine, q), served_ttft(client, q)
                if round_:
                    ours.append(a)
                    served.append(s)
    finally:
        server.stop()
    a, s = statistics.median(ours), statistics.median(served)
    report(f"time to first token, {len(ours)} questions × median (warm, bundled SmolLM2 + MiniLM)", [
        ("`ask` in-process (AnswerEngine.ask)", f"{a * 1000:.0f} ms"),
        ("through `edgerag serve` (openai client, SSE)", f"{s * 1000:.0f} ms"),
        ("server overhead", f"{(s - a) * 1000:+.0f} ms"),
        ("ratio served / in-process", f"{s / a:.2f}x"),
    ])


if __name__ == "__main__":
    main()
