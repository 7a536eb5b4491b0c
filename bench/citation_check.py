"""The answers of an `eval qa` run (open condition) re-checked by the overlap-only citation checker of b0415f6 and by
today's fact-level one: how many answers each flags, and examples only the new one flags (issue 11).

The recorded answer text is replayed through AnswerEngine.ask (same retrieval and context, no generation), so
the new checker sees exactly what the model was shown; the old checker (read from git) runs on the same input.
Run: flock /tmp/edgerag-bench.lock .venv/bin/python bench/citation_check.py RUN_DIR
"""
import importlib.util
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import edgerag  # noqa: F401
from edgerag.config import load_settings, replace
from edgerag.embed import load_active_embedder
from edgerag.evaluate import metrics as M
from edgerag.evaluate.corpus import scratch_collection
from edgerag.evaluate.datasets import load_squad
from edgerag.generate.answer import AnswerEngine
from edgerag.evaluate.recheck import ReplayedGenerator
from edgerag.generate.llm import load_generator
from edgerag.retrieve import Retriever

OLD = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
OLD.write(subprocess.run(["git", "show", "b0415f6:edgerag/generate/citations.py"], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout)
OLD.close()
spec = importlib.util.spec_from_file_location("old_citations", OLD.name)
old = importlib.util.module_from_spec(spec)
sys.modules["old_citations"] = old
spec.loader.exec_module(old)


run = Path(sys.argv[1])
config = json.loads((run / "config.json").read_text())
records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line.strip()]
settings = replace(load_settings(), temperature=config["temperature"], max_tokens=config["max_tokens"])
dataset = load_squad(config["source"])
embedder = load_active_embedder(settings)
collection = scratch_collection(settings, dataset.name, dataset.contexts.values(), embedder)
replay = ReplayedGenerator(load_generator(settings))
engine = AnswerEngine(Retriever.from_settings(collection, embedder, settings), replay, settings,
                      mode=config["mode"], top_k=config["top_k"])

rows, examples = [], []
for r in records:
    replay.reply = r["text"]
    answer = engine.ask(r["question"])
    assert [s["n"] for s in r["sources"]] == [s.number for s in answer.sources], r["item_id"]
    if answer.not_found:
        rows.append({"refused": True})
        continue
    olds = old.check_answer(answer.text, [s.text for s in answer.sources], embed=embedder.embed)
    old_flag = any(s.unsupported for s in olds)
    new = M.check_metrics(answer)
    statuses = Counter(s.status for s in answer.sentences)
    rows.append({"refused": False, "old_flag": old_flag, "new_flag": bool(answer.flagged),
                 "contradicted": bool(new["answer_contradicted"]), "markers": new["model_markers"],
                 "mcp": new["model_citation_precision"], "attr": new["attribution_rate"],
                 "supported": new["answer_supported"], "contains": r["contains"], "f1": r["f1"],
                 "old_grounded": any(s.supported_by for s in olds), "new_grounded": answer.grounded,
                 "statuses": statuses})
    if answer.flagged and not old_flag:
        examples.append((r["question"], r["answers"][0], answer.text.replace("\n", " ")[:200],
                         [f"{s.status}: {'; '.join(s.reasons)}" for s in answer.flagged]))

answered = [x for x in rows if not x["refused"]]
n = len(answered)
mean = lambda key: sum(x[key] for x in answered if x[key] is not None) / max(1, sum(x[key] is not None for x in answered))  # noqa
print(f"run {run.name}: {len(rows)} questions, {len(rows) - n} refused, {n} answered")
print(f"answers flagged (a claim not supported): old checker {sum(x['old_flag'] for x in answered)}/{n}, "
      f"new checker {sum(x['new_flag'] for x in answered)}/{n}")
print(f"  newly flagged {sum(x['new_flag'] and not x['old_flag'] for x in answered)}, "
      f"no longer flagged {sum(x['old_flag'] and not x['new_flag'] for x in answered)}, "
      f"with a contradicted sentence {sum(x['contradicted'] for x in answered)}")
print(f"no sentence supported ('treat as not found'): old {sum(not x['old_grounded'] for x in answered)}/{n}, "
      f"new {sum(not x['new_grounded'] for x in answered)}/{n}")
print(f"model markers {mean('markers'):.2f}, model-citation precision {mean('mcp'):.2f} "
      f"(n={sum(x['mcp'] is not None for x in answered)}), attribution rate {mean('attr'):.2f}, "
      f"answer supported {mean('supported'):.2f}, contains {mean('contains'):.2f}, F1 {mean('f1'):.3f}")
print("sentence statuses:", dict(sum((x["statuses"] for x in answered), Counter())))
flagged_contains = [x for x in answered if x["new_flag"]]
print(f"flagged answers that contain the gold answer: {sum(x['contains'] for x in flagged_contains)}/{len(flagged_contains)}")
for q, gold, text, why in examples[:12]:
    print(f"- Q: {q} (gold: {gold})\n  A: {text}\n  {why}")
collection.close()
