"""What more training buys: `finetune train` of the bundled base on real synthesized data, for many more steps
than a 2-core CPU affords, on an NVIDIA GPU; the adapters come back here to be exported and evaluated like any run.

The GPU machine has CUDA torch and transformers but no llama-cpp-python and carries at most 64 MiB per call, less
than the base GGUF (98 MB). So:
- here, `--collect-base DIR` writes the store's base GGUF in two parts (each fits one call beside the working tree)
  and the base's tokenizer files from the HF cache `finetune` made here, where llama.cpp verified them
  (finetune/base.py; the GPU machine cannot run that check);
- there, call 1 stages the first part (`--stage PART`), call 2 brings the second with the data and runs `--train`:
  the GGUF is joined and dequantized by transformers (as base.py does), paired with the verified tokenizer,
  registered as an HF base under the same store name, and trained once per `--steps` value (fp32 LoRA by default,
  the pipeline's rank, learning rate and sequence length). Each run's adapter folder and records are packed into one
  tar, cut into parts of at most 15 MiB (what a device call brings back per file);
- here, `--unpack DIR --into RUN_ROOT` rebuilds each run folder; `edgerag finetune export RUN/train` then writes the
  GGUFs into the store, and `edgerag eval qa` compares them.

    .venv/bin/python -P bench/gpu_finetune.py --collect-base .gpu/base --name smollm2-135m-instruct-q4_1
    python3 -P bench/gpu_finetune.py --stage .gpu/part-0           # call 1, there (part-0 moved out of base/)
    python3 -P bench/gpu_finetune.py --train DATA_DIR --steps 136 --steps 400 --batch-size 4 --out "$OUT"  # call 2
    .venv/bin/python -P bench/gpu_finetune.py --unpack DIR --into RUN_ROOT
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("EDGERAG_GPU_STAGE") or Path(tempfile.gettempdir()) / "edgerag-gpu-stage")
PART_BYTES = 15 * 2**20
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def say(message: str) -> None:
    print(message, flush=True)


def collect_base(folder: Path, name: str) -> None:
    """The base GGUF in two parts and its llama.cpp-verified tokenizer (made here by finetune's prepare_base)."""
    import edgerag  # noqa: F401  (its offline switches first)
    from edgerag.config import load_settings
    from edgerag.finetune.base import prepare_base
    from edgerag.models import ModelStore

    settings = load_settings()
    base = prepare_base(settings, name, say)
    store = ModelStore(settings.models_dir)
    gguf = store.main_path(base.name)
    folder.mkdir(parents=True, exist_ok=True)
    data = gguf.read_bytes()
    cut = len(data) * 56 // 100  # the first call carries the larger part: the second also carries the data
    (folder / "part-0").write_bytes(data[:cut])
    (folder / "part-1").write_bytes(data[cut:])
    for file in TOKENIZER_FILES:
        if (base.hf_dir / file).is_file():
            shutil.copy2(base.hf_dir / file, folder / file)
    (folder / "base.json").write_text(json.dumps({"name": base.name, "gguf": gguf.name, "bytes": len(data)}))
    say(f"{folder}: {gguf.name} in 2 parts ({cut} + {len(data) - cut} bytes) and its tokenizer")


def stage(part: Path) -> None:
    STAGE.mkdir(parents=True, exist_ok=True)
    shutil.copy2(part, STAGE / part.name)
    say(f"staged {part.name} ({part.stat().st_size} bytes) in {STAGE}")


def _hf_base(base_dir: Path, home: Path) -> str:
    """Join the GGUF, dequantize it with transformers, pair it with the verified tokenizer, register it as HF."""
    import transformers

    from edgerag.models import ModelStore
    from edgerag.models.importing import import_model

    info = json.loads((base_dir / "base.json").read_text())
    gguf = STAGE / info["gguf"]
    with gguf.open("wb") as out:
        for part in (STAGE / "part-0", base_dir / "part-1"):
            out.write(part.read_bytes())
    if gguf.stat().st_size != info["bytes"]:
        raise SystemExit(f"joined GGUF has {gguf.stat().st_size} bytes, expected {info['bytes']}")
    hf = home / "hf-base"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base_dir))
    loaded = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config  # transformers 5 marks a GGUF-loaded model as quantized and will not save it: rebuild
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    for target in (model.config, model.generation_config):  # as base.py's dequantization sets them
        target.eos_token_id, target.bos_token_id = tokenizer.eos_token_id, tokenizer.bos_token_id
        target.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    import_model(ModelStore(home / "models"), hf, name=info["name"])
    return info["name"]


def train_runs(data_dir: Path, base_dir: Path, steps: list[int], batch_size: int, out: Path, cpu_check: bool,
               bits: int) -> int:
    home = Path(tempfile.mkdtemp(prefix="edgerag-gpu-home-"))
    os.environ["EDGERAG_HOME"] = str(home)
    import edgerag  # noqa: F401
    import torch

    from edgerag.config import load_settings
    from edgerag.finetune.pipeline import FinetuneOptions
    from edgerag.finetune.train import TrainConfig, train

    gpu = torch.cuda.is_available()
    if not gpu and not cpu_check:
        say("no CUDA GPU: nothing trained")
        return 1
    started = time.perf_counter()
    name = _hf_base(base_dir, home)
    device = torch.cuda.get_device_name(0) if gpu else "cpu"
    say(f"base {name} ready in {time.perf_counter() - started:.0f} s on {device}")
    results, runs = [], home / "runs"
    for n in steps:
        run = runs / f"gpu-{n}"
        config = TrainConfig(base=name, train_file=str(data_dir / "train.jsonl"),
                             val_file=str(data_dir / "val.jsonl") if (data_dir / "val.jsonl").is_file() else None,
                             out_dir=str(run / "train"), bits=bits if gpu else 32, max_steps=n, batch_size=batch_size,
                             learning_rate=FinetuneOptions.learning_rate, save_steps=10**6)  # the pipeline's
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        result = train(config, load_settings())
        record = {"run": run.name, "steps": result.steps, "batch_size": batch_size, "seconds": round(result.seconds, 1),
                  "tokens_per_s": round(result.tokens_per_s), "final_loss": round(result.final_loss, 4),
                  "eval_loss": result.eval_loss,
                  "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if gpu else None}
        say(f"{json.dumps(record)} first losses: {result.losses[:6]}")
        results.append(record)
        shutil.rmtree(run / "train" / "export", ignore_errors=True)
        for checkpoint in (run / "train").glob("checkpoint-*"):
            shutil.rmtree(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-runs.json").write_text(json.dumps({"device": device, "runs": results}, indent=2))
    packed = out / "runs.tar"
    with tarfile.open(packed, "w") as tar:
        tar.add(runs, arcname="runs")
    subprocess.run(["split", "-b", str(PART_BYTES), "-d", str(packed), str(out / "runs.tar.")], check=True)
    packed.unlink()
    return 0


def unpack(folder: Path, into: Path) -> None:
    parts = sorted(folder.glob("runs.tar.*"))
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        joined = Path(tmp) / "runs.tar"
        with joined.open("wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        with tarfile.open(joined) as tar:
            tar.extractall(into, filter="data")
    say(f"unpacked {len(parts)} parts into {into / 'runs'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collect-base", type=Path, metavar="DIR", help="here: the base's parts and tokenizer")
    parser.add_argument("--name", help="with --collect-base: the store's base generator (default: the active one)")
    parser.add_argument("--stage", type=Path, metavar="PART", help="there, call 1: keep this part for call 2")
    parser.add_argument("--train", type=Path, metavar="DATA_DIR", help="there, call 2: train.jsonl (+ val.jsonl)")
    parser.add_argument("--base", type=Path, default=REPO / ".gpu" / "base", help="the collected base folder")
    parser.add_argument("--steps", type=int, action="append", help="one training run per value")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bits", type=int, default=32, choices=(16, 32),
                        help="fp32 or bf16 LoRA (default 32: bf16 went NaN at step 34 on SmolLM2-135M, docs/gpu.md)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-finetune"))
    parser.add_argument("--cpu-check", action="store_true", help=argparse.SUPPRESS)  # a dry run here, fp32
    parser.add_argument("--unpack", type=Path, metavar="DIR", help="here: the parts that came back")
    parser.add_argument("--into", type=Path, help="with --unpack: where the run folders go")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.collect_base:
        collect_base(args.collect_base, args.name)
    elif args.stage:
        stage(args.stage)
    elif args.train:
        return train_runs(args.train, args.base, args.steps or [120], args.batch_size, args.out, args.cpu_check,
                          args.bits)
    elif args.unpack and args.into:
        unpack(args.unpack, args.into)
    else:
        parser.error("choose --collect-base, --stage, --train or --unpack with --into")
    return 0


if __name__ == "__main__":
    sys.exit(main())
