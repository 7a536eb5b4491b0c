"""Finetuning speed on this machine: s/step, tokens/s and peak RSS per configuration (dtype, gradient
checkpointing, length grouping, LoRA on all or only the upper layers, sources trimmed to a window around the
answer), for `edgerag.finetune.train` and for a plain peft + Trainer run of the same settings (the ratio shows our
wrapper costs nothing). Real sequence lengths: the data is synthesized from the 240 XQuAD-en paragraphs.

    flock /tmp/edgerag-bench.lock .venv/bin/python bench/finetune.py [--steps 4] [--only 'fp32;bf16'] [--no-plain]

Each configuration runs in its own process (peak RSS is per process); the first step is a warm-up and not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DATA, REPO, bench_home

# name -> (TrainConfig overrides, data variant)
CONFIGS = {
    "fp32": ({"bits": 32}, "full"),
    "fp32 + grad checkpointing": ({"bits": 32, "gradient_checkpointing": True}, "full"),
    "fp32, no length grouping": ({"bits": 32, "group_by_length": False}, "full"),
    "fp32, LoRA on top 10 of 30 layers": ({"bits": 32, "lora_layers": 10}, "full"),
    "fp32, sources cut to 80 words (default)": ({"bits": 32}, "window"),
    "bf16": ({"bits": 16}, "full"),
    "NF4 QLoRA": ({"bits": 4}, "full"),
    "NF4 QLoRA + grad checkpointing": ({"bits": 4, "gradient_checkpointing": True}, "full"),
}
BATCH = int(os.environ.get("BENCH_BATCH", "4"))


def prepare_data(home: Path) -> dict[str, Path]:
    """Cloze-question training files (full sources and 80-word windows) from an XQuAD-en collection, made once."""
    out = {"full": home / "ft-bench" / "full", "window": home / "ft-bench" / "window"}
    if all((p / "train.jsonl").is_file() for p in out.values()):
        return {k: p / "train.jsonl" for k, p in out.items()}
    from edgerag.config import load_settings
    from edgerag.finetune.data import DataConfig, synthesize
    from edgerag.ingest.sync import Record, sync_records
    from edgerag.retrieve import Retriever
    from edgerag.runtime import open_collection

    settings = load_settings()
    data = json.loads((DATA / "qa" / "xquad_en" / "xquad.en.json").read_text(encoding="utf-8"))
    records = [Record(f"{a['title']}/{i}", p["context"]) for a in data["data"] for i, p in enumerate(a["paragraphs"])]
    collection, embedder = open_collection(settings, "ft-bench-xquad", create=True)
    with collection:
        sync_records(collection, embedder, records, settings.chunk_tokens, settings.chunk_overlap)
        retriever = Retriever.from_settings(collection, embedder, settings)
        for variant, folder in out.items():
            synthesize(collection, retriever, None, DataConfig("ft-bench-xquad", folder, max_examples=200,
                                                               use_generator=False, val_fraction=0,
                                                               window_words=80 if variant == "window" else 0))
    return {k: p / "train.jsonl" for k, p in out.items()}


def run_ours(overrides: dict, train_file: Path, steps: int) -> dict:
    from edgerag.config import load_settings
    from edgerag.finetune.train import TrainConfig, train

    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(base=os.environ["BENCH_BASE"], train_file=str(train_file), out_dir=tmp,
                             max_steps=steps, batch_size=BATCH, save_steps=10**6, warmup_steps=0, **overrides)
        result = train(config, load_settings(), on_event=lambda e: stamps.append(time.perf_counter())
                       if e.get("event") == "step" else None)
    return {"step_s": statistics.median(b - a for a, b in zip(stamps, stamps[1:])),
            "tokens_per_s": result.tokens_per_s}


def run_plain(overrides: dict, train_file: Path, steps: int) -> dict:
    """The textbook peft + Trainer loop with the same model, dtype, LoRA, batch and data; no edgerag code
    except locating the base model's HF folder."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from edgerag.config import load_settings
    from edgerag.finetune.base import prepare_base

    folder = str(prepare_base(load_settings(), os.environ["BENCH_BASE"]).hf_dir)
    bits, gc = overrides.get("bits", 32), overrides.get("gradient_checkpointing", False)
    kwargs = {"dtype": torch.float32 if bits == 32 else torch.bfloat16}
    if bits == 4:
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    if bits == 4:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    n_layers = model.config.num_hidden_layers
    top = overrides.get("lora_layers", 0)
    model = get_peft_model(model, LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        layers_to_transform=list(range(n_layers - top, n_layers)) if top else None,
        layers_pattern="layers" if top else None))
    rows = [json.loads(line) for line in train_file.read_text().splitlines() if line.strip()]
    dataset = []
    for row in rows:
        # return_dict=False: transformers 5 returns a dict by default
        ids = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=False)
        if len(ids) <= 1536:
            dataset.append({"input_ids": ids, "labels": ids})
    stamps: list[float] = []

    class Timer(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(
            output_dir=tmp, max_steps=steps, per_device_train_batch_size=BATCH, learning_rate=2e-4,
            lr_scheduler_type="cosine", logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
            bf16=bits in (4, 16), group_by_length=overrides.get("group_by_length", True), disable_tqdm=True,
            remove_unused_columns=False, include_num_input_tokens_seen=True, seed=0)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=dataset, callbacks=[Timer()],
                                       data_collator=transformers.DataCollatorForSeq2Seq(tokenizer, padding=True))
        started = time.perf_counter()
        trainer.train()
    step_s = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
    return {"step_s": step_s, "tokens_per_s": trainer.state.num_input_tokens_seen / (stamps[-1] - started)}


def child(name: str, impl: str, train_file: Path, steps: int) -> None:
    overrides, _ = CONFIGS[name]
    result = (run_ours if impl == "ours" else run_plain)(overrides, train_file, steps)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def matmul_gflops() -> dict[str, float]:
    """Why the dtype matters here: 1024² matmul throughput in fp32 and bf16 on this CPU, now."""
    import torch

    out = {}
    for dtype, reps in ((torch.float32, 20), (torch.bfloat16, 2)):
        a, b = torch.randn(1024, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        out[str(dtype).removeprefix("torch.")] = reps * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9
    return out


def measure(name: str, impl: str, train_file: Path, steps: int, timeout: float) -> dict | None:
    cmd = [sys.executable, __file__, "--child", name, "--impl", impl, "--data", str(train_file),
           "--steps", str(steps)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        print(f"  {name} ({impl}) failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is not timed)")
    parser.add_argument("--only", default=None, help="';'-separated configuration names (exact, else prefix)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain peft + Trainer baseline runs")
    parser.add_argument("--batch", type=int, default=BATCH, help="examples per step (default 4, as training)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run before it is reported as slower")
    parser.add_argument("--full", type=Path, default=None, help="use this train.jsonl (whole sources) instead of "
                        "synthesizing one")
    parser.add_argument("--window", type=Path, default=None, help="use this train.jsonl (80-word sources)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["BENCH_BATCH"] = str(args.batch)
    globals()["BATCH"] = args.batch
    home = bench_home()
    from edgerag.config import load_settings
    from edgerag.models import ModelStore

    os.environ["BENCH_BASE"] = ModelStore(load_settings().models_dir).active_name("generator")
    if args.child:
        return child(args.child, args.impl, args.data, args.steps)
    files = {"full": args.full, "window": args.window} if args.full and args.window else prepare_data(home)
    lengths = {}
    for variant, path in files.items():
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        lengths[variant] = statistics.mean(sum(len(m["content"]) for m in r["messages"]) for r in rows)
    wanted = [p.strip() for p in args.only.split(";")] if args.only else []
    names = [n for n in CONFIGS if not wanted or n in wanted or any(n.startswith(p) and p not in CONFIGS
                                                                    for p in wanted)]
    load = os.getloadavg()[0]
    flops = matmul_gflops()
    print(f"finetune speed, {os.cpu_count()} CPU cores (load average {load:.1f}), batch {BATCH}, {args.steps} steps "
          f"(first untimed), mean example {lengths['full']:.0f} chars (window: {lengths['window']:.0f}); "
          f"1024² matmul: fp32 {flops['float32']:.1f} GFLOPS, bf16 {flops['bfloat16']:.2f} GFLOPS")
    print("| configuration | s/step | tokens/s | peak RSS MB | plain peft+Trainer s/step | ratio (plain/ours) |")
    print("|---|---|---|---|---|---|")
    for name in names:
        train_file = files[CONFIGS[name][1]]
        ours = measure(name, "ours", train_file, args.steps, args.timeout)
        plain = None if args.no_plain else measure(name, "plain", train_file, args.steps, args.timeout)
        if ours is None or "timeout" in ours:
            print(f"| {name} | {'failed' if ours is None else f'> {args.timeout:.0f} s per run'} | | | | |", flush=True)
            continue
        if plain is not None and "timeout" in plain:
            plain = None
        ratio = f"{plain['step_s'] / ours['step_s']:.2f}" if plain else "–"
        print(f"| {name} | {ours['step_s']:.1f} | {ours['tokens_per_s']:.0f} | {ours['peak_rss_mb']:.0f} | "
              f"{plain['step_s']:.1f} | {ratio} |" if plain else
              f"| {name} | {ours['step_s']:.1f} | {ours['tokens_per_s']:.0f} | {ours['peak_rss_mb']:.0f} | – | – |",
              flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "bench"))
    main()
