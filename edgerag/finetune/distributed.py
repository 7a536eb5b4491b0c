"""Several training processes (`torchrun`, `accelerate launch`): who writes, and how the others wait.

Under `torchrun --nproc_per_node N edgerag finetune train ...` (or `accelerate launch`, which starts torchrun)
N copies of the same command run; transformers' Trainer does the data-parallel training (DDP, or FSDP from an
accelerate config). Everything else follows two rules:
- every file a run writes (run folder, options, data, train_config.json, checkpoints' extra files, adapter, loss
  history and PNG, export, gate records, the events on stdout) is written by the main process (global rank 0);
- the other ranks wait for the main process where it works alone (data synthesis, the base model's one-time
  conversion) and take its choices (run folder, steps fitted to a time budget) from it with `share()`.
One process (no WORLD_SIZE in the environment, the common case) imports nothing here and never waits.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta

from ..errors import require

# The other ranks sit in a barrier while the main process synthesizes data or dequantizes the base model, which on
# a CPU can take hours; torch's default timeout (30 minutes) would kill them. If the main process fails instead,
# torchrun stops every rank, so a long timeout never leaves a process hanging.
WAIT = timedelta(hours=12)

_GROUP = None  # a gloo group for our control messages, whatever backend the training itself uses (NCCL on GPUs)


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join the launcher's process group (idempotent). accelerate's PartialState picks the backend (gloo on a CPU,
    NCCL on GPUs) and binds each rank to its GPU before any model loads; the Trainer reuses the group."""
    global _GROUP
    if world_size() == 1 or _GROUP is not None:
        return
    torch = require("torch")
    accelerate = require("accelerate")
    accelerate.PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT)
    _GROUP = torch.distributed.new_group(backend="gloo", timeout=WAIT)


def barrier() -> None:
    if _GROUP is not None:
        require("torch").distributed.barrier(group=_GROUP)


def share(value):
    """The main process's `value` on every rank (any picklable object)."""
    if _GROUP is None:
        return value
    box = [value]
    require("torch").distributed.broadcast_object_list(box, src=0, group=_GROUP)
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank if it is true on any: a stop request (SIGTERM, a spent time budget) reaches ranks at
    different steps, but they must all stop at the same one or the next gradient all-reduce waits forever."""
    if _GROUP is None:
        return flag
    torch = require("torch")
    value = torch.tensor([int(flag)])
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX, group=_GROUP)
    return bool(value.item())


@contextmanager
def main_first():
    """The main process runs the block first (e.g. converting the base model into the shared cache); the others
    run it after, when its files are complete."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()
