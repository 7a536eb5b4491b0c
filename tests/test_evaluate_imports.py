"""The evaluation harness is on the runtime path: it must import (and draw plots) with the training stack blocked."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "optimum", "sentence_transformers")
MODULES = ["edgerag.evaluate", "edgerag.evaluate.metrics", "edgerag.evaluate.datasets", "edgerag.evaluate.corpus",
           "edgerag.evaluate.retrieval", "edgerag.evaluate.qa", "edgerag.evaluate.report", "edgerag.evaluate.plots",
           "edgerag.evaluate.gate", "edgerag.evaluate.systems", "edgerag.cli.eval_cmd"]


def test_evaluate_imports_without_the_training_stack(tmp_path):
    code = (
        "import sys, importlib\n"
        f"for m in {HEAVY!r}: sys.modules[m] = None\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "from edgerag.evaluate import plots\n"
        "from edgerag.evaluate.metrics import Estimate\n"
        f"plots.grouped_bars(__import__('pathlib').Path({str(tmp_path / 'p.png')!r}), 't', ['m'],"
        " {'s': {'m': Estimate(0.5, 0.4, 0.6, 10)}})\n"
        "print('pyplot' in ' '.join(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"  # the object API only: no pyplot global state
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
