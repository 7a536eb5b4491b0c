"""Cold start: wall time from launching `edgerag ask` (a new process) to the first answer token on stdout,
against the baseline of launching a bare Python interpreter that only imports llama_cpp and loads the same GGUF,
and against `ask` with the saved system prompt KV state switched off (EDGERAG_PROMPT_CACHE=0). Targets (issue 14):
<= 2 s to first token, overhead beyond prompt evaluation <= 0.5 s. The three arms interleave, 5 rounds; then the
time in parts, in fresh processes, with and without the saved state.
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/coldstart.py
"""

import os
import subprocess
import sys
import time

from _common import REPO, bench_home, headline, percentile, report

QUESTION = "How long does the Aurora K3 warranty last?"
ROUNDS = 5


def first_output(cmd: list[str], env) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    proc.stdout.read(1)
    elapsed = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    return elapsed


# A fresh interpreter that does what `ask` does, one step after the other (the real `ask` loads the GGUF in a thread
# while the embedder and collection open), timing each (perf_counter from the first line it runs; the
# interpreter's own start is the wall time minus that). The answer's timings split the last step into retrieval
# and prompt evaluation up to the first token.
PHASES = r"""
import sys, time, json
launched = time.time()
t = [("start", time.perf_counter())]
def mark(name): t.append((name, time.perf_counter()))
import edgerag.cli, edgerag.runtime, edgerag.generate.answer; mark("imports")
from edgerag.config import load_settings
from edgerag.embed import load_active_embedder
from edgerag.generate.llm import load_generator
from edgerag.generate.prompts import SYSTEM_PROMPT
from edgerag.runtime import open_collection
s = load_settings(); embedder = load_active_embedder(s); mark("ONNX embedder load")
collection, _ = open_collection(s, "bench-demo", embedder=embedder); mark("collection open (SQLite, hnsw, keyword file)")
generator = load_generator(s); mark("GGUF load (mmap)")
state = generator.prime(SYSTEM_PROMPT); mark("system prompt KV state (load, or evaluate without the cache)")
from edgerag.generate.answer import AnswerEngine
from edgerag.retrieve import Retriever
engine = AnswerEngine(Retriever.from_settings(collection, embedder, s), generator, s)
first = []
answer = engine.ask(sys.argv[1], on_token=lambda p: first or (first.append(1), mark("ask")))
parts = [("interpreter start", launched - float(sys.argv[2]))] + [(n, b - a) for (_, a), (n, b) in zip(t, t[1:])]
ask = dict(parts).pop("ask")
tm = answer.timings
parts = [p for p in parts if p[0] != "ask"] + [("ask: retrieval", tm["retrieve_s"]),
         ("ask: prompt evaluation -> first token", tm["first_token_s"] - tm["retrieve_s"]),
         ("ask: the rest (budget, context assembly, template)", ask - tm["first_token_s"])]
print(json.dumps({"parts": parts, "state": state, "prompt_tokens": tm["prompt_tokens"],
                  "evaluated": tm["prompt_tokens_evaluated"]}))
"""

PROMPT_EVAL = "ask: prompt evaluation -> first token"


def phases(env) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", PHASES, QUESTION, repr(time.time())], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    home = bench_home()
    env = {**os.environ, "EDGERAG_HOME": str(home)}
    no_cache = {**env, "EDGERAG_PROMPT_CACHE": "0"}
    exe = str(REPO / ".venv" / "bin" / "edgerag")
    subprocess.run([exe, "ingest", str(REPO / "docs" / "samples"), "-c", "bench-demo", "--json"], env=env,
                   capture_output=True, check=True)
    from edgerag.config import load_settings
    from edgerag.models import ModelStore

    store = ModelStore(load_settings().models_dir)
    gguf = store.main_path(store.active_name("generator"))
    bare = [sys.executable, "-c", "import sys, llama_cpp; llama_cpp.Llama(model_path=sys.argv[1], n_ctx=2048, "
            "verbose=False); print('x', flush=True)", str(gguf)]
    ask = [exe, "ask", QUESTION, "-c", "bench-demo"]
    first_output(ask, env)  # writes the system prompt's state file if this home has none yet
    arms = {"ask": (ask, env), "ask without the prompt state": (ask, no_cache), "bare": (bare, env)}
    times = {name: [] for name in arms}
    help_ = []
    for r in range(ROUNDS):  # interleaved, the order rotating each round
        names = list(arms)[r % 3:] + list(arms)[:r % 3]
        for name in names:
            times[name].append(first_output(*arms[name]))
        help_.append(first_output([exe, "--help"], env))
    with_state = [phases(env) for _ in range(3)]
    without = [phases(no_cache) for _ in range(3)]
    med = lambda v: percentile(v, 50)  # noqa: E731
    spread = lambda v: f"(min {min(v):.2f}, max {max(v):.2f})"  # noqa: E731
    prompt_eval = med([dict(b["parts"])[PROMPT_EVAL] for b in with_state])
    ours, base = times["ask"], times["bare"]
    report(f"cold start (new process each run, {ROUNDS} interleaved rounds, median; load average "
           f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end)", [
        ("edgerag ask → first answer token", f"{med(ours):.2f} s {spread(ours)} (target <= 2 s)"),
        ("edgerag ask without the saved system prompt state",
         f"{med(times['ask without the prompt state']):.2f} s {spread(times['ask without the prompt state'])}"),
        ("bare python + llama_cpp model load (baseline)", f"{med(base):.2f} s {spread(base)}"),
        ("edgerag --help", f"{med(help_):.2f} s {spread(help_)}"),
        ("ratio ask / baseline", f"{med(ours) / med(base):.2f}x"),
        ("overhead beyond prompt evaluation: ask − its prompt evaluation (target <= 0.5 s)",
         f"{med(ours) - prompt_eval:.2f} s"),
    ])
    headline("`ask` cold start → first token", med(ours), "s", 2.0, baseline=med(base),
             baseline_name="bare python + llama_cpp model load",
             detail=f"without the saved system prompt state {med(times['ask without the prompt state']):.2f} s")
    headline("`ask` cold start: overhead beyond prompt evaluation", med(ours) - prompt_eval, "s", 0.5,
             detail=f"prompt evaluation → first token {prompt_eval:.2f} s")
    for title, runs in (("with the saved system prompt state", with_state), ("without it", without)):
        report(f"cold start in parts, {title} (3 fresh processes, steps one after another, median); prompt "
               f"{runs[0]['prompt_tokens']} tokens, {runs[0]['evaluated']} evaluated, state {runs[0]['state']}",
               [(name, f"{med([dict(b['parts'])[name] for b in runs]):.3f} s") for name, _ in runs[0]["parts"]]
               + [("sum", f"{med([sum(v for _, v in b['parts']) for b in runs]):.3f} s")])


if __name__ == "__main__":
    main()
