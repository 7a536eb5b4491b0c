"""The runtime path never imports the training stack (torch, transformers, peft, bitsandbytes, optimum)."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "optimum", "sentence_transformers")

RUNTIME_MODULES = [
    "edgerag", "edgerag.cli", "edgerag.config", "edgerag.models", "edgerag.embed", "edgerag.store",
    "edgerag.ingest", "edgerag.ingest.sync", "edgerag.retrieve", "edgerag.generate.answer",
    "edgerag.generate.chat", "edgerag.generate.llm", "edgerag.runtime",
    "edgerag.serve", "edgerag.serve.app", "edgerag.serve.server", "edgerag.cli.serve_cmd",
    "edgerag.text", "edgerag.generate.verify", "edgerag.cli.verify_cmd",
]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_runtime_modules_do_not_import_heavy_stack():
    code = (
        "import sys, importlib\n"
        f"for m in {RUNTIME_MODULES!r}: importlib.import_module(m)\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_runtime_modules_import_with_heavy_stack_blocked():
    code = (
        "import sys, importlib\n"
        f"for m in {HEAVY!r}: sys.modules[m] = None\n"
        f"for m in {RUNTIME_MODULES!r}: importlib.import_module(m)\n"
        "from edgerag.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert "ingest" in result.stdout and "models" in result.stdout


def test_missing_training_extra_names_the_extra():
    code = (
        "import sys\nsys.modules['optimum'] = None\nsys.modules['optimum.exporters'] = None\n"
        "sys.modules['optimum.exporters.onnx'] = None\n"
        "from edgerag.errors import require, MissingExtraError\n"
        "try:\n    require('optimum.exporters.onnx')\nexcept MissingExtraError as e:\n    print(e)\n"
    )
    result = _run(code)
    assert "edgerag[train]" in result.stdout
