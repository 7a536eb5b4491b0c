"""Run every benchmark in turn (never two at once: they would share the same 2 cores)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["embedding.py", "retrieval.py", "generation.py", "coldstart.py", "chat_cache.py", "ingest.py", "parsers.py",
           "eval_nfcorpus.py"]

if __name__ == "__main__":
    failed = [s for s in SCRIPTS if subprocess.run([sys.executable, str(HERE / s)]).returncode != 0]
    sys.exit(f"failed: {', '.join(failed)}" if failed else 0)
