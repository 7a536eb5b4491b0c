"""Chat: time to first token of the second turn with llama.cpp KV-cache reuse (the first turn resent verbatim,
one source numbering per chat: sources already shown are named, not resent) vs without (state reset before each
turn), and how many of the second prompt's tokens llama.cpp evaluated. Target: cached <= 0.5x uncached.
Greedy decoding, 5 rounds, the two arms interleaved (order alternating).
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/chat_cache.py
"""

import dataclasses
import statistics

from _common import REPO, bench_home, headline, report

ROUNDS = 5

TURNS = [("Who designed the Old Harbour Lighthouse?", "When was it electrified?"),
         ("How long does the Aurora K3 warranty last?", "What does it not cover?"),
         ("What is the meal allowance in the EU?", "And outside the EU?")]


def main() -> None:
    bench_home()
    from edgerag.config import load_settings
    from edgerag.generate.chat import ChatSession
    from edgerag.ingest import ingest
    from edgerag.runtime import build_engine

    settings = dataclasses.replace(load_settings(), temperature=0.0)  # greedy: both arms see the same first answer
    ingest(settings, [REPO / "docs" / "samples"], "bench-demo")
    engine = build_engine(settings, "bench-demo")

    tokens: dict[str, tuple[int, int]] = {}  # second turn (reuse): (prompt tokens, evaluated)

    def second_turn_ttft(reuse: bool, first: str, second: str) -> float:
        session = ChatSession(engine, reuse_cache=reuse)
        session.ask(first)
        t = session.ask(second).timings
        if reuse:
            tokens[second] = (t.get("prompt_tokens", 0), t.get("prompt_tokens_evaluated", 0))
        return t.get("first_token_s", 0.0)

    second_turn_ttft(True, *TURNS[0])  # warm-up
    times = {True: [], False: []}
    ratios = []
    for r in range(ROUNDS):
        for i, (first, second) in enumerate(TURNS):
            order = (True, False) if (r + i) % 2 == 0 else (False, True)  # interleaved, alternating who goes first
            got = {reuse: second_turn_ttft(reuse, first, second) for reuse in order}
            for reuse, t in got.items():
                times[reuse].append(t)
            ratios.append(got[True] / got[False])
    evaluated = "; ".join(f"{q!r} {e} of {n}" for q, (n, e) in tokens.items())
    med = statistics.median
    report(f"second-turn time to first token ({len(TURNS)} conversations x {ROUNDS} rounds, greedy, median)", [
        ("with KV-cache reuse", f"{med(times[True]):.2f} s (min {min(times[True]):.2f}, max {max(times[True]):.2f})"),
        ("without (state reset; baseline)", f"{med(times[False]):.2f} s "
                                            f"(min {min(times[False]):.2f}, max {max(times[False]):.2f})"),
        ("ratio, median of pairs (target <= 0.5)", f"{med(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})"),
        ("second-turn prompt tokens evaluated with reuse (last round)", evaluated),
    ])
    headline("chat 2nd-turn first token, KV reuse / none", med(ratios), "x", 0.5, baseline=1.0,
             baseline_name="state reset", detail=f"{med(times[True]):.2f} s vs {med(times[False]):.2f} s")


if __name__ == "__main__":
    main()
