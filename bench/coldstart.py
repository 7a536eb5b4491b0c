"""Cold start: wall time from launching `edgerag ask` (a new process) to the first answer token on stdout,
against the baseline of launching a bare Python interpreter that only imports llama_cpp and loads the same GGUF.
Target: <= 2 s to first token. Runs interleave ours and the baseline, 5 rounds.
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/coldstart.py
"""

import os
import subprocess
import sys
import time

from _common import REPO, bench_home, percentile, report

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


# A fresh interpreter that does what `ask` does, timing each phase (perf_counter from the first line it runs;
# the interpreter's own start is the wall time minus that).
PHASES = r"""
import sys, time, json
launched = time.time()
t = [("start", time.perf_counter())]
def mark(name): t.append((name, time.perf_counter()))
import edgerag.cli, edgerag.runtime, edgerag.generate.answer; mark("imports")
from edgerag.config import load_settings
from edgerag.embed import load_active_embedder
from edgerag.generate.llm import load_generator
from edgerag.runtime import open_collection
s = load_settings(); embedder = load_active_embedder(s); mark("ONNX embedder load")
collection, _ = open_collection(s, "bench-demo", embedder=embedder); mark("collection open (SQLite, hnsw, keyword file)")
generator = load_generator(s); mark("GGUF load (mmap)")
from edgerag.generate.answer import AnswerEngine
from edgerag.retrieve import Retriever
engine = AnswerEngine(Retriever.from_settings(collection, embedder, s), generator, s)
hits = engine.retrieve(sys.argv[1]); mark("retrieval")
first = []
engine.ask(sys.argv[1], on_token=lambda p: first or (first.append(1), mark("ask: retrieval again + prompt evaluation -> first token")))
print(json.dumps([("interpreter start", launched - float(sys.argv[2]))] + [(n, b - a) for (_, a), (n, b) in zip(t, t[1:])]))
"""


def phases(env) -> dict[str, float]:
    import json

    out = subprocess.run([sys.executable, "-c", PHASES, QUESTION, repr(time.time())], env=env, capture_output=True,
                         text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    home = bench_home()
    env = {**os.environ, "EDGERAG_HOME": str(home)}
    exe = str(REPO / ".venv" / "bin" / "edgerag")
    subprocess.run([exe, "ingest", str(REPO / "docs" / "samples"), "-c", "bench-demo", "--json"], env=env,
                   capture_output=True, check=True)
    from edgerag.config import load_settings
    from edgerag.models import ModelStore

    store = ModelStore(load_settings().models_dir)
    gguf = store.main_path(store.active_name("generator"))
    bare = [sys.executable, "-c", "import sys, llama_cpp; llama_cpp.Llama(model_path=sys.argv[1], n_ctx=2048, "
            "verbose=False); print('x', flush=True)", str(gguf)]
    ours, base, help_ = [], [], []
    for r in range(ROUNDS):  # interleaved, who goes first alternating
        pair = [(ours, [exe, "ask", QUESTION, "-c", "bench-demo"]), (base, bare)]
        for times, cmd in (pair if r % 2 == 0 else pair[::-1]):
            times.append(first_output(cmd, env))
        help_.append(first_output([exe, "--help"], env))
    breakdown = [phases(env) for _ in range(3)]
    spread = lambda v: f"(min {min(v):.2f}, max {max(v):.2f})"  # noqa: E731
    report(f"cold start (new process each run, {ROUNDS} interleaved rounds, median)", [
        ("edgerag ask → first answer token", f"{percentile(ours, 50):.2f} s {spread(ours)} (target <= 2 s)"),
        ("bare python + llama_cpp model load (baseline)", f"{percentile(base, 50):.2f} s {spread(base)}"),
        ("edgerag --help", f"{percentile(help_, 50):.2f} s {spread(help_)}"),
        ("ratio ask / baseline", f"{percentile(ours, 50) / percentile(base, 50):.2f}x"),
    ])
    report("cold start in parts (3 fresh processes, median; the last part includes the answer's retrieval)",
           [(name, f"{percentile([b[name] for b in breakdown], 50):.3f} s") for name in breakdown[0]])

if __name__ == "__main__":
    main()
