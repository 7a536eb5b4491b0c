"""`edgerag finetune train`: LoRA / QLoRA on the generator with transformers' Trainer and peft.

Order of work (read top to bottom):
1. TrainConfig is validated on creation and saved as `train_config.json` in the run folder and every checkpoint.
2. The base model loads in fp32 (bits=32), bf16 (16) or NF4 4-bit (4, QLoRA, bitsandbytes); bits=0 picks the
   measured default: fp32 LoRA on a CPU (bench/finetune.py: fastest there; bf16 and NF4 are emulated on CPUs
   without bf16 instructions, and a 135M model fits in memory anyway), NF4 QLoRA on a GPU (fp32 LoRA on one
   without bitsandbytes: bf16 diverged there, see default_bits). A loss that is not finite stops the run with
   TrainingDiverged and saves nothing. LoRA goes on the
   attention and MLP projections of all layers or only the top `lora_layers` (backward then stops there).
3. Examples are tokenized with the model's chat template; the loss covers assistant tokens only; batches group
   examples of similar length (less padding).
4. With `time_budget_min`, a few timed forward/backward passes on the real data fix `max_steps` so training ends
   in about that time, after at most `max_epochs` passes over the data (MAX_EPOCHS says why). Trainer checkpoints
   every `save_steps`; a callback turns its logs into events (step, loss, tokens/s, ETA) for the CLI and the TUI.
5. `resume=True` continues from the newest whole checkpoint (optimizer, scheduler and RNG restored; the data
   order is a function of seed and epoch), so a killed run reaches the same loss history and adapter as an
   uninterrupted one.
6. The adapter, the loss history and a loss-curve PNG are written to the run folder.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BadInputError, EdgeragError, require
from . import MAX_EPOCHS, distributed
from .archs import arch_for_hf_type
from ..fileio import write_text_atomic
from .data import read_jsonl

_STOP = threading.Event()


def request_stop() -> None:
    """Ask a running train() to checkpoint and stop after the current step (signal-handler safe)."""
    _STOP.set()


TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    base: str  # models-store name of the base generator
    train_file: str
    out_dir: str
    val_file: str | None = None
    bits: int = 0  # 0 = measured default for this machine (see default_bits), 4 = QLoRA NF4, 16 = bf16, 32 = fp32
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(TARGET_MODULES))
    lora_layers: int = 0  # 0 = all layers; N = only the top N (measured: backward then stops at the lowest)
    max_steps: int = 120
    time_budget_min: float | None = None  # if set, max_steps is chosen from measured speed to fit this
    max_epochs: float = MAX_EPOCHS  # with a time budget: at most this many passes over the data (0 = no cap)
    learning_rate: float = 2e-4
    batch_size: int = 4  # examples per optimizer step (per process); a CPU runs them one at a time, see micro_batches
    grad_accum: int = 1
    max_seq_len: int = 1536
    warmup_steps: int = 5
    save_steps: int = 20
    logging_steps: int = 1
    gradient_checkpointing: bool = False  # measured: ~30% slower and not needed for memory at 135M
    group_by_length: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.bits == 0:
            self.bits = default_bits()
        if self.bits not in (4, 16, 32):
            raise BadInputError(f"bits must be 4, 16 or 32 (0: the default for this machine), not {self.bits}")
        if self.batch_size == 0 or self.max_seq_len == 0:  # 0 = chosen for this machine's memory (sizing.py)
            from .sizing import choose_for_device
            self.batch_size, self.max_seq_len = choose_for_device(self.base, self.batch_size, self.max_seq_len,
                                                                  self.bits)
        if self.time_budget_min is not None and not self.time_budget_min > 0:
            raise BadInputError(f"time budget must be positive minutes, not {self.time_budget_min}")
        if self.max_epochs < 0:
            raise BadInputError(f"max_epochs must be 0 (no cap) or positive, not {self.max_epochs}")
        if self.lora_layers < 0:
            raise BadInputError(f"lora_layers must be 0 (all) or positive, not {self.lora_layers}")
        for name in ("lora_r", "max_steps", "batch_size", "grad_accum", "max_seq_len", "save_steps"):
            if getattr(self, name) <= 0:
                raise BadInputError(f"{name} must be positive, not {getattr(self, name)}")
        if not 0 < self.learning_rate < 1:
            raise BadInputError(f"learning_rate must be in (0, 1), not {self.learning_rate}")
        if not Path(self.train_file).is_file():
            raise BadInputError(f"{self.train_file}: no such training file")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "train_config.json", json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "TrainConfig":
        path = Path(folder) / "train_config.json"
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise BadInputError(f"{path}: unreadable training config ({exc})") from exc


def default_bits() -> int:
    """NF4 QLoRA where it wins (a GPU: bitsandbytes kernels, memory), fp32 LoRA on a CPU (bench/finetune.py)."""
    import importlib.util

    torch = require("torch")
    if not torch.cuda.is_available():
        return 32
    # A GPU without bitsandbytes (optional there): fp32 LoRA, not bf16. On an H200, SmolLM2-135M on real data
    # went NaN at step 34 in bf16 and trained fine in fp32, at 8,011 tokens/s against bf16's 4,042 (batch 4;
    # docs/gpu.md, bench/gpu_finetune.py).
    return 4 if importlib.util.find_spec("bitsandbytes") else 32


class TrainingDiverged(EdgeragError):
    """The loss became NaN or infinite: the weights are garbage from there on, so nothing is saved or exported."""


class TrainingStopped(EdgeragError):
    """Training was asked to stop (SIGTERM, Cancel in the TUI); its last checkpoint is resumable."""

    exit_code = 130


@dataclass
class TrainResult:
    out_dir: Path
    adapter_dir: Path
    steps: int
    final_loss: float
    losses: list[tuple[int, float]]
    eval_loss: float | None
    seconds: float
    tokens_per_s: float
    peak_rss_mb: float


# TrainingArguments fields that transformers 5 removed, passed only where they exist. save_safetensors: 5.x always
# writes safetensors and raises TypeError on the keyword (axolotl#3315 hit it; our GPU check raised first on
# group_by_length, which now lives on our Trainer, docs/gpu.md).
_VERSION_DEPENDENT_ARGS = ("save_safetensors", "logging_nan_inf_filter")


def _training_arguments(transformers, **kwargs):
    import dataclasses

    known = {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
    return transformers.TrainingArguments(**{k: v for k, v in kwargs.items()
                                             if k in known or k not in _VERSION_DEPENDENT_ARGS})


def chat_ids(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    """The token ids of a chat under the tokenizer's template, in transformers 4 and 5 alike (5 returns a
    BatchEncoding by default: measured on a GPU machine with transformers 5.17, docs/gpu.md)."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                        return_dict=False)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def tokenize_example(tokenizer, messages: list[dict], max_len: int) -> dict | None:
    """input_ids + labels where only the final assistant message (and its end token) is learned."""
    prompt_ids = chat_ids(tokenizer, messages[:-1], add_generation_prompt=True)
    full_ids = chat_ids(tokenizer, messages)
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise BadInputError("the chat template does not extend the prompt by the answer; cannot mask the loss")
    if len(full_ids) > max_len:
        return None
    labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids):]
    return {"input_ids": full_ids, "labels": labels}


def _dataset(tokenizer, path: str, max_len: int):
    items = [tokenize_example(tokenizer, ex["messages"], max_len) for ex in read_jsonl(Path(path))]
    kept = [i for i in items if i is not None]
    if not kept:
        raise BadInputError(f"{path}: every example is longer than max_seq_len={max_len}")
    return kept


class _Collator:
    """Left-padded batches whose logits are computed only where the loss is.

    The loss covers the final assistant message, which ends every example; with left padding those tokens sit in
    the last `K` columns of every row (`K` = the longest answer + the one prompt token that predicts its first
    token), so `logits_to_keep=K` skips the LM head and its vocabulary-wide softmax everywhere else. At a 49k
    vocabulary that head is about a fifth of a 135M model's compute and most of its activation memory (a
    1,536-token example holds 300 MB of fp32 logits, twice with their gradient). Explicit position ids make left
    padding give the same positions (and the same loss) as right padding."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch):
        torch = require("torch")
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        positions = torch.zeros((len(batch), width), dtype=torch.long)
        keep = 1
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, width - n:] = torch.tensor(b["input_ids"])
            labels[i, width - n:] = torch.tensor(b["labels"])
            mask[i, width - n:] = 1
            positions[i, width - n:] = torch.arange(n)
            learned = [j for j, label in enumerate(b["labels"]) if label != -100]
            if learned:
                keep = max(keep, n - learned[0] + 1)
        keep = min(keep, width)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                "labels": labels[:, width - keep:], "logits_to_keep": keep}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(config: TrainConfig, settings, resume: bool = False,
          on_event: Callable[[dict], None] = lambda e: None) -> TrainResult:
    torch = require("torch")
    transformers = require("transformers")
    from .base import load_for_training, prepare_base

    out = Path(config.out_dir)
    # Under torchrun / accelerate launch every rank runs this; files and events come from the main one only.
    main = distributed.is_main()
    distributed.init()
    if not main:
        on_event = lambda e: None  # noqa: E731
    if resume:
        resume = distributed.share(_trusted_checkpoints(out) if main else None)
    if resume:
        saved = TrainConfig.load(out)
        if config.time_budget_min is not None and saved.time_budget_min == config.time_budget_min:
            config.max_steps = saved.max_steps  # chosen by the interrupted run's speed measurement
        if asdict(saved) != asdict(config):
            raise BadInputError(f"{out}: --resume needs the same settings as the interrupted run "
                                f"(saved in {out / 'train_config.json'})")
    elif any(out.glob("checkpoint-*")):
        raise BadInputError(f"{out} already has checkpoints: pass --resume to continue, or choose another --out")
    if main:
        config.save(out)
    transformers.set_seed(config.seed)
    started = time.perf_counter()

    on_event({"event": "status", "message": f"loading base model ({config.bits}-bit)"})
    with distributed.main_first():  # a first use converts the GGUF into a shared cache: once, by the main rank
        base = prepare_base(settings, config.base, say=lambda m: on_event({"event": "status", "message": m}))
    model, tokenizer = load_for_training(base, config.bits, config.gradient_checkpointing)
    model = with_lora(model, config)
    train_set = _dataset(tokenizer, config.train_file, config.max_seq_len)
    # validation loss on at most 16 examples: a trend signal, not worth minutes of CPU after training
    val_set = _dataset(tokenizer, config.val_file, config.max_seq_len)[:16] if config.val_file else None
    collator = _Collator(tokenizer.pad_token_id)
    budget_from = time.perf_counter()  # the budget covers training, not loading (a first load also converts)
    if config.time_budget_min is not None and not resume:
        on_event({"event": "status", "message": "measuring training speed on the data"})
        s_per_token = measure_speed(model, train_set, collator, config.batch_size)
        left_s = config.time_budget_min * 60 - (time.perf_counter() - budget_from)
        fit = steps_for_budget(left_s, s_per_token, train_set, config)
        # no more than max_epochs passes over the data: past one, answerable questions were refused far more
        cap = epoch_steps(len(train_set), config, distributed.world_size()) if config.max_epochs else fit
        config.max_steps = distributed.share(min(fit, cap))
        if main:
            config.save(out)
        on_event({"event": "status", "message": f"{1 / s_per_token:.0f} tokens/s measured: {fit} steps fit the "
                                                f"{config.time_budget_min:g}-minute budget"
                                                + (f", capped at {config.max_epochs:g} epoch: {cap}" if cap < fit
                                                   else "")})

    gpu = torch.cuda.is_available()
    per_device, accumulate = micro_batches(config, gpu)
    args = _training_arguments(
        transformers, output_dir=str(out), max_steps=config.max_steps, per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device, gradient_accumulation_steps=accumulate,
        learning_rate=config.learning_rate, warmup_steps=min(config.warmup_steps, config.max_steps // 10),
        lr_scheduler_type="cosine", logging_steps=config.logging_steps, save_steps=config.save_steps,
        save_total_limit=2, eval_strategy="no", report_to=[], seed=config.seed, data_seed=config.seed,
        use_cpu=not gpu, bf16=config.bits in (4, 16), dataloader_num_workers=0, remove_unused_columns=False,
        gradient_checkpointing=False,  # already enabled on the model (peft needs it set before wrapping)
        disable_tqdm=True, save_safetensors=True, include_num_input_tokens_seen=True,
        logging_nan_inf_filter=False,  # a NaN loss must reach our callback, which stops the run, not be averaged away
        ddp_find_unused_parameters=False,  # (several processes) every LoRA weight gets a gradient each step
        prediction_loss_only=True)  # validation needs the loss, not every logit gathered
    deadline = budget_from + config.time_budget_min * 60 * 1.15 if config.time_budget_min else None
    callback = _EventCallback(on_event, config, out, deadline)
    trainer = _trainer_class()(model=model, args=args, train_dataset=train_set, data_collator=collator,
                               callbacks=[callback])
    trainer.group_by_length = config.group_by_length  # our sampler's (TrainingArguments lost the field in 5.x)
    trainer.remove_callback(transformers.PrinterCallback)  # our events replace its raw dict prints on stdout
    checkpoint = resume and any(out.glob("checkpoint-*"))
    try:
        trainer.train(resume_from_checkpoint=True if checkpoint else None)
    except (ValueError, KeyError, RuntimeError) as exc:
        if checkpoint:
            raise BadInputError(f"{out}: cannot resume from the last checkpoint ({exc}); delete it and rerun") from exc
        raise
    if callback.diverged_at:
        raise TrainingDiverged(
            f"training diverged: the loss was not finite at step {callback.diverged_at} ({config.bits}-bit); no "
            "adapter was saved. bf16 LoRA did this on SmolLM2-135M on an H200 (docs/gpu.md), fp32 did not: "
            "train with --bits 32, or a lower learning rate")
    if _STOP.is_set() or callback.stopped:
        _STOP.clear()
        raise TrainingStopped(f"stopped at step {trainer.state.global_step} with a checkpoint in {out}; "
                              "resume with --resume")
    seconds = time.perf_counter() - started
    eval_loss = None
    if val_set:
        eval_loss = float(trainer.evaluate(eval_dataset=val_set)["eval_loss"])
    adapter_dir = out / "adapter"
    losses = callback.losses
    if trainer.is_fsdp_enabled:  # sharded LoRA weights: every rank takes part in gathering them, the main one writes
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(adapter_dir))
    elif main:
        model.save_pretrained(str(adapter_dir))
    if main:
        tokenizer.save_pretrained(str(adapter_dir))
        history = {"losses": losses, "eval_loss": eval_loss}
        write_text_atomic(out / "loss_history.json", json.dumps(history, indent=2) + "\n")
        plot_losses(losses, eval_loss, out / "loss_curve.png", title=f"LoRA r={config.lora_r}, {config.bits}-bit")
    distributed.barrier()  # every rank returns once the adapter is complete
    result = TrainResult(out, adapter_dir, trainer.state.global_step, losses[-1][1] if losses else math.nan,
                         losses, eval_loss, seconds, callback.tokens / max(callback.busy_s, 1e-9), _peak_rss_mb())
    on_event({"event": "done", "adapter": str(adapter_dir), "final_loss": result.final_loss,
              "eval_loss": eval_loss, "steps": result.steps})
    return result


def _trusted_checkpoints(out: Path) -> bool:
    """Before a resume: drop the checkpoints a kill left half-written (pipeline.drop_incomplete_checkpoints) and
    the temp files of atomic writes it interrupted. True if a whole checkpoint is left to resume from; False when
    training must start afresh (the folder is then gone, as if never started)."""
    from .pipeline import drop_incomplete_checkpoints

    if not drop_incomplete_checkpoints(out):
        return False
    for stray in out.glob("*.tmp"):
        stray.unlink(missing_ok=True)
    return True


def _trainer_class():
    """transformers.Trainer whose data order is a function of (seed, epoch) alone.

    The Trainer's length-grouped sampler shuffles with torch's global RNG when an epoch's iterator starts. A run
    resumed in the middle of epoch e > 0 starts that iterator before it restores the checkpoint's RNG state, so it
    drew epoch e's order from the freshly seeded RNG (epoch 0's order) while the uninterrupted run drew it after
    epoch 0's dropout: different batches, a different loss history and adapter (bench/fault_finetune.py, a kill
    after checkpoint 4 of 6 with 3 steps per epoch). Several ranks would also each shuffle differently. Here the
    order comes from its own generator seeded with seed + epoch (the Trainer sets the epoch before iterating, also
    when it skips the batches a resumed run has done), and the global RNG is left to dropout, which the checkpoint
    restores."""
    torch = require("torch")
    transformers = require("transformers")
    from transformers.trainer_pt_utils import get_length_grouped_indices

    class EpochSeededSampler(torch.utils.data.Sampler):
        def __init__(self, lengths: list[int], group: int | None, seed: int):
            self.lengths, self.group, self.seed, self.epoch = lengths, group, seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self):
            return len(self.lengths)

        def __iter__(self):
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            if self.group:  # examples of similar length side by side, `group` (one optimizer step) at a time
                return iter(get_length_grouped_indices(self.lengths, self.group, generator=generator))
            return iter(torch.randperm(len(self.lengths), generator=generator).tolist())

    class Trainer(transformers.Trainer):
        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            group = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return EpochSeededSampler([len(x["input_ids"]) for x in dataset],
                                      group if getattr(self, "group_by_length", True) else None, self.args.seed)

        def _load_optimizer_and_scheduler(self, checkpoint):
            # Several CPU processes: the Trainer loads optimizer.pt onto args.device, an indexed "cpu:N" that
            # torch.load cannot restore to ("don't know how to restore data location ... cpu:0"), so a DDP run on
            # CPUs could not resume; a CPU device is plain "cpu" to torch.load.
            if self.args.device.type != "cpu" or self.args.device.index is None:
                return super()._load_optimizer_and_scheduler(checkpoint)
            load = torch.load

            def on_cpu(*args, **kwargs):
                if "map_location" in kwargs and getattr(kwargs["map_location"], "type", None) == "cpu":
                    kwargs["map_location"] = "cpu"
                return load(*args, **kwargs)

            torch.load = on_cpu
            try:
                return super()._load_optimizer_and_scheduler(checkpoint)
            finally:
                torch.load = load

    return Trainer


def with_lora(model, config: TrainConfig):
    """peft LoRA on the target projections, of every layer or of the top `lora_layers` only."""
    peft = require("peft")
    layers = getattr(model.config, "num_hidden_layers", 0)
    only = None
    if config.lora_layers and layers and config.lora_layers < layers:
        only = list(range(layers - config.lora_layers, layers))
    arch = arch_for_hf_type(getattr(model.config, "model_type", ""))  # Phi-3's fused projections (archs.py)
    targets = arch.lora_targets(config.target_modules) if arch else list(config.target_modules)
    lora = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                           target_modules=targets, bias="none", task_type="CAUSAL_LM",
                           layers_to_transform=only, layers_pattern="layers" if only else None)
    return peft.get_peft_model(model, lora)


def micro_batches(config: TrainConfig, gpu: bool) -> tuple[int, int]:
    """(examples per forward pass, passes per optimizer step). On a CPU one example per pass, accumulated to the
    same optimizer step: the Trainer divides the loss by the answer tokens of the whole accumulated step, so the
    update is the batch's. bench/finetune.py measured 121 tokens/s at 4.6 GB peak RSS that way against 90 tokens/s
    at 16.9 GB for batches of 4 on SmolLM2-135M (no padding, activations for one sequence instead of four). The
    sampler groups one optimizer step's examples either way (_trainer_class) and the Trainer skips micro-batches
    on resume, so a resumed run continues with the same split. A GPU wants the wide batch."""
    if gpu:
        return config.batch_size, config.grad_accum
    return 1, config.batch_size * config.grad_accum


def measure_speed(model, train_set: list[dict], collator, batch_size: int, passes: int = 3) -> float:
    """Seconds per token of forward + backward on single real examples (the first pass is a warm-up). Single
    examples keep the measurement cheap: these passes train nothing, and on a busy 2-core CPU a full batch takes
    minutes. On a CPU the per-token cost depends little on batch size (the matmuls are sequence-long already);
    the deadline in the callback catches a machine that gets slower than measured."""
    import random

    rng = random.Random(0)
    model.train()
    seconds = tokens = 0.0
    for n in range(passes):
        batch = collator([train_set[rng.randrange(len(train_set))]])
        batch = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}
        t0 = time.perf_counter()
        model(**batch).loss.backward()
        if n:
            seconds += time.perf_counter() - t0
            tokens += batch["input_ids"].numel()
    model.zero_grad(set_to_none=True)
    return seconds / max(tokens, 1.0)


def steps_for_budget(budget_s: float, s_per_token: float, train_set: list[dict], config: TrainConfig) -> int:
    """Optimizer steps that fit: tokens per step from the data's mean length (length-grouped batches pad little),
    +10% for the optimizer, logging and checkpoints."""
    mean_len = sum(len(x["input_ids"]) for x in train_set) / len(train_set)
    per_step = s_per_token * mean_len * config.batch_size * config.grad_accum * 1.1
    return max(1, int(budget_s / per_step))


def epoch_steps(examples: int, config: TrainConfig, processes: int = 1) -> int:
    """Optimizer steps in `config.max_epochs` passes over `examples` (batch_size is per process)."""
    return max(1, math.ceil(config.max_epochs * examples / (config.batch_size * config.grad_accum * processes)))


class _EventCallback:
    """Trainer callback (duck-typed TrainerCallback) turning logs into progress events."""

    def __init__(self, on_event, config: TrainConfig, out: Path, deadline: float | None = None):
        self.on_event, self.config, self.out, self.deadline = on_event, config, out, deadline
        self.losses: list[tuple[int, float]] = []
        self.tokens, self.busy_s, self._tokens_before = 0, 0.0, 0
        self._t = None
        self.stopped = False  # stopped on request (on any rank: they all stop at the same step)
        self.diverged_at: int | None = None  # the step whose loss was not finite

    def __getattr__(self, name):  # every other TrainerCallback hook is a no-op
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_train_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()
        self._tokens_before = state.num_input_tokens_seen or 0
        history = self.out / "loss_history.partial.json"
        if state.global_step and history.is_file():  # resumed: keep the curve from before the kill
            self.losses = [tuple(x) for x in json.loads(history.read_text()) if x[0] <= state.global_step]

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.busy_s += time.perf_counter() - self._t
        self.tokens = (state.num_input_tokens_seen or 0) - self._tokens_before  # this session's tokens only
        # several ranks must stop at the same step (else the next gradient all-reduce waits forever): any rank's
        # stop request or spent budget stops all; with one process these are the flags themselves
        requested = distributed.any_rank(_STOP.is_set())
        late = distributed.any_rank(bool(self.deadline and time.perf_counter() > self.deadline))
        if requested:
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        elif late:  # the machine got slower than measured
            self.on_event({"event": "status", "message": f"time budget spent: stopping at step {state.global_step}"})
            control.should_save = True
            control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kw):
        if not logs or "loss" not in logs:
            return
        step, loss = state.global_step, float(logs["loss"])
        if not math.isfinite(loss):  # every later step is NaN too: stop now, keep no checkpoint of it
            self.diverged_at = self.diverged_at or step
            control.should_save = False
            control.should_training_stop = True
            return
        self.losses.append((step, loss))
        per_step = self.busy_s / max(1, len(self.losses))
        self.on_event({"event": "step", "step": step, "max_steps": state.max_steps, "loss": round(loss, 4),
                       "learning_rate": logs.get("learning_rate"),
                       "tokens_per_s": round(self.tokens / max(self.busy_s, 1e-9), 1),
                       "eta_s": round(per_step * (state.max_steps - step), 1)})

    def on_save(self, args, state, control, **kw):
        if not state.is_world_process_zero:
            return
        self.config.save(self.out / f"checkpoint-{state.global_step}")
        write_text_atomic(self.out / "loss_history.partial.json", json.dumps(self.losses))
        self.on_event({"event": "checkpoint", "step": state.global_step})


def plot_losses(losses, eval_loss, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if losses:
        steps, values = zip(*losses)
        ax.plot(steps, values, label="training loss (assistant tokens)", color="#2a6fdb")
    if eval_loss is not None:
        ax.axhline(eval_loss, color="#d9480f", linestyle="--", label=f"validation loss {eval_loss:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
