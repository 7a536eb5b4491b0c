"""Chat: time to first token of the second turn with llama.cpp KV-cache reuse (earlier turns resent verbatim)
vs without (state reset before each turn). Target: cached <= 0.5x uncached. Run: .venv/bin/python bench/chat_cache.py
"""

from _common import REPO, bench_home, report

TURNS = [("Who designed the Old Harbour Lighthouse?", "When was it electrified?"),
         ("How long does the Aurora K3 warranty last?", "What does it not cover?"),
         ("What is the meal allowance in the EU?", "And outside the EU?")]


def main() -> None:
    bench_home()
    from edgerag.config import load_settings
    from edgerag.generate.chat import ChatSession
    from edgerag.ingest import ingest
    from edgerag.runtime import build_engine

    settings = load_settings()
    ingest(settings, [REPO / "docs" / "samples"], "bench-demo")
    engine = build_engine(settings, "bench-demo")
    results = {}
    for reuse in (False, True, False, True):  # interleaved, the first pair doubles as warm-up
        ttft = []
        for first, second in TURNS:
            session = ChatSession(engine, reuse_cache=reuse)
            session.ask(first)
            answer = session.ask(second)
            ttft.append(answer.timings.get("first_token_s", 0.0))
        results[reuse] = sum(ttft) / len(ttft)
    report("second-turn time to first token (3 conversations)", [
        ("with KV-cache reuse", f"{results[True]:.2f} s"),
        ("without (state reset; baseline)", f"{results[False]:.2f} s"),
        ("ratio (target <= 0.5)", f"{results[True] / results[False]:.2f}x"),
    ])


if __name__ == "__main__":
    main()
