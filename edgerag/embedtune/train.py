"""`edgerag embedder train`: the student (the active embedder's PyTorch weights) learns the teacher's ranking.

Default loss: listwise distillation, sentence-transformers' DistillKLDivLoss: KL(teacher ‖ student) over each
query's candidates, the teacher's logits being `teacher_scale × (fused score / best fused score)` and the
student's cosine / temperature. Ablation: InfoNCE (MultipleNegativesRankingLoss: in-batch + the same hard negatives).

The loop is ours, the model and losses are sentence-transformers': its Trainer needs the `datasets` package, and
every `datasets` release that installs beside our pins (transformers 4.57 needs huggingface-hub < 1.0) is the old
2.x line with aiohttp and friends. The loop is the fixed, commented order below; a checkpoint holds the model,
optimizer, scheduler, RNG states and the config, so `--resume` continues the same run (the batch order is a seeded
permutation per epoch, replayed up to the checkpoint's step).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import BadInputError, require
from . import MAX_SEQ_LENGTH, TEACHER_SCALE
from .data import read_examples

LOSSES = ("distill", "infonce")


@dataclass
class EmbedTrainConfig:
    data_dir: Path
    out_dir: Path
    base: Path  # a sentence-transformers (or plain HF) folder: the student's starting weights
    loss: str = "distill"
    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 5e-5  # measured on NFCorpus title data: 2e-5 gave +0.69 dense nDCG@10, 5e-5 +1.02
    warmup: float = 0.1  # share of steps with a linear warm-up
    temperature: float = 0.05  # student logits = cosine / temperature (both losses)
    # teacher logits = scale × normalised fused score (1.0 for the positive). At 30 the softmax put ~95% of the
    # mass on the positive (InfoNCE in all but name); at 10 the positive keeps ~38% and the rest follows the ranking.
    teacher_scale: float = TEACHER_SCALE
    negatives: int | None = None  # use the first N negatives of each example (None: all of them)
    # passages are cut here in training (the runtime embeds up to the model's limit)
    max_seq_length: int = MAX_SEQ_LENGTH
    # The embeddings and the lowest N transformer layers keep their weights: backward stops above them, so a step
    # costs less (the forward pass is unchanged). 0 trains every layer.
    freeze_layers: int = 0
    max_steps: int | None = None
    checkpoint_every: int = 50
    device: str = "auto"  # auto: cuda when present, else cpu
    seed: int = 0

    def __post_init__(self):
        self.data_dir, self.out_dir, self.base = Path(self.data_dir), Path(self.out_dir), Path(self.base)
        if self.loss not in LOSSES:
            raise BadInputError(f"unknown loss {self.loss!r} (choose {', '.join(LOSSES)})")
        if self.batch_size < 1 or self.epochs <= 0 or self.lr <= 0 or self.temperature <= 0:
            raise BadInputError("batch_size, epochs, lr and temperature must be positive")
        if self.freeze_layers < 0:
            raise BadInputError("freeze_layers must be 0 or more")

    def record(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass
class EmbedTrainResult:
    student: Path
    steps: int
    final_loss: float | None
    seconds: float
    resumed_from: int
    loss_png: Path | None


def _device(choice: str) -> str:
    import torch

    if choice != "auto":
        return choice
    return "cuda" if torch.cuda.is_available() else "cpu"


def _batches(n: int, batch_size: int, epoch: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _freeze_lower(model, layers: int) -> None:
    """Freeze the embeddings and the lowest `layers` transformer blocks of a BERT-style student."""
    if not layers:
        return
    body = model[0].auto_model
    blocks = getattr(getattr(body, "encoder", None), "layer", None)
    if blocks is None or not hasattr(body, "embeddings"):
        raise BadInputError(f"freeze_layers {layers}: {type(body).__name__} has no embeddings + encoder.layer "
                            "to freeze; train every layer (freeze_layers 0)")
    if layers >= len(blocks):
        raise BadInputError(f"freeze_layers {layers}: the model has {len(blocks)} layers; leave one to train")
    for module in (body.embeddings, *blocks[:layers]):
        module.requires_grad_(False)


def _save_checkpoint(folder: Path, model, optimizer, scheduler, step: int, config: EmbedTrainConfig,
                     history: list) -> None:
    """Written beside, then renamed over the previous one: a kill leaves the old or the new checkpoint."""
    import torch

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp / "model"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                "torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps(config.record(), indent=2), encoding="utf-8")
    (tmp / "loss_history.json").write_text(json.dumps(history), encoding="utf-8")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def train_embedder(config: EmbedTrainConfig, emit: Callable[[dict], None] = lambda e: None,
                   resume: bool = False) -> EmbedTrainResult:
    """Train and save the student to out_dir/student (written last: its presence marks a finished run)."""
    require("torch")
    st = require("sentence_transformers")
    import torch
    from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss, MultipleNegativesRankingLoss
    from transformers import get_linear_schedule_with_warmup

    examples = read_examples(config.data_dir / "train.jsonl")
    k = min(len(e["negatives"]) for e in examples)
    k = min(k, config.negatives) if config.negatives else k
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint"
    start_step, history = 0, []
    source = config.base
    if resume and (checkpoint / "state.pt").is_file():
        saved = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
        if saved != config.record():
            raise BadInputError(f"{checkpoint}: the checkpoint was made with another configuration; "
                                "start a new run or use the same options")
        source = checkpoint / "model"
        history = json.loads((checkpoint / "loss_history.json").read_text(encoding="utf-8"))
    elif not (config.base / "config.json").is_file():
        raise BadInputError(f"{config.base}: not a model folder (no config.json)")

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    device = _device(config.device)
    model = st.SentenceTransformer(str(source), device=device, local_files_only=True)
    model.max_seq_length = min(config.max_seq_length, model.max_seq_length or config.max_seq_length)
    _freeze_lower(model, config.freeze_layers)
    if config.loss == "distill":
        # The temperature goes into the student's similarity, not the loss' own `temperature`: that one also
        # multiplies the loss by T², which at T = 0.05 shrinks every gradient 400-fold.
        def scaled_cosine(a, b):
            return st.util.pairwise_cos_sim(a, b) / config.temperature

        loss_fn = DistillKLDivLoss(model, similarity_fct=scaled_cosine, temperature=1.0)
    else:
        loss_fn = MultipleNegativesRankingLoss(model, scale=1.0 / config.temperature)
    per_epoch = math.ceil(len(examples) / config.batch_size)
    total = config.max_steps or max(1, round(per_epoch * config.epochs))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup * total), total)
    if source != config.base:
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        start_step = state["step"]

    def features(texts: list[str]) -> dict:
        batch = model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)
        return {name: t.to(device) if hasattr(t, "to") else t for name, t in batch.items()}

    emit({"event": "start", "total": total, "resumed_from": start_step, "examples": len(examples),
          "device": device, "loss": config.loss, "candidates": k + 1})
    started, step, last = time.perf_counter(), 0, None
    model.train()
    # Order per step: batch → tokenise query, positive, negatives → loss → backward → clip → optimizer → scheduler.
    for epoch in range(math.ceil(total / per_epoch)):
        for batch in _batches(len(examples), config.batch_size, epoch, config.seed):
            if step >= total:
                break
            step += 1
            if step <= start_step:  # replaying the order up to the checkpoint
                continue
            rows = [examples[i] for i in batch]
            inputs = [features([r["query"] for r in rows]), features([r["positive"] for r in rows])]
            inputs += [features([r["negatives"][j] for r in rows]) for j in range(k)]
            if config.loss == "distill":
                teacher = torch.tensor([r["teacher"][: k + 1] for r in rows], dtype=torch.float32, device=device)
                loss = loss_fn(inputs, teacher * config.teacher_scale)  # teacher logits
            else:
                loss = loss_fn(inputs, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            last = float(loss.detach())
            history.append({"step": step, "loss": last, "lr": scheduler.get_last_lr()[0]})
            emit({"event": "step", "step": step, "total": total, "loss": round(last, 5),
                  "seconds": round(time.perf_counter() - started, 1)})
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < total:
                _save_checkpoint(checkpoint, model, optimizer, scheduler, step, config, history)
                emit({"event": "checkpoint", "step": step})
    model.eval()
    student = out / "student"
    tmp = out / "student.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    (out / "loss_history.json").write_text(json.dumps(history), encoding="utf-8")
    png = _plot(history, out / "loss_curve.png", config.loss)
    summary = {"config": config.record(), "steps": step, "resumed_from": start_step, "final_loss": last,
               "seconds": round(time.perf_counter() - started, 1), "examples": len(examples), "candidates": k + 1}
    (tmp / "edgerag_train.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shutil.rmtree(student, ignore_errors=True)
    tmp.rename(student)
    shutil.rmtree(checkpoint, ignore_errors=True)
    emit({"event": "done", "student": str(student), "final_loss": last})
    return EmbedTrainResult(student, step, last, summary["seconds"], start_step, png)


def _plot(history: list[dict], path: Path, loss: str) -> Path | None:
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{loss} loss")
    ax.set_title("embedder training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
