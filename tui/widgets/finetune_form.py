"""The finetune settings form: base model, training data (a collection or a JSONL file), bits, LoRA rank,
steps and learning rate, each checked as it is typed."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import Function, Integer, Number
from textual.widgets import Input, Label, Select

FILE = "__jsonl__"  # the data choice meaning "a JSONL file"


def _jsonl(value: str) -> bool:
    path = Path(value.strip()).expanduser()
    return path.suffix == ".jsonl" and path.is_file()


class FinetuneForm(Vertical):
    FIELDS = {  # id → (label, validator, what is wrong)
        "ft-rank": ("rank", Integer(1, 256), "LoRA rank: a whole number from 1 to 256"),
        "ft-steps": ("steps", Integer(1, 100_000), "steps: a whole number from 1 to 100000"),
        "ft-lr": ("lr", Number(1e-7, 1.0), "learning rate: a number above 0 and at most 1, e.g. 2e-4"),
    }

    def compose(self) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label("base", classes="field-label")
            yield Select([], prompt="base model", id="ft-base", compact=True)
            yield Label("data", classes="field-label")
            yield Select([], prompt="training data", id="ft-data", compact=True)
        yield Input(placeholder="JSONL file of chat examples (messages: system/user/assistant)", id="ft-file",
                    compact=True, validators=[Function(_jsonl, "not an existing .jsonl file")])
        with Horizontal(classes="form-row"):
            yield Label("bits", classes="field-label")
            # auto: fp32 LoRA on a CPU (bf16, which NF4 computes in, is far slower there), NF4 QLoRA on a GPU
            # (fp32 LoRA there without bitsandbytes: bf16 went NaN, docs/gpu.md).
            yield Select([("auto", 0), ("4 (QLoRA)", 4), ("16 (LoRA)", 16)], value=0, allow_blank=False, id="ft-bits",
                         compact=True)
            for field_id, default in (("ft-rank", "8"), ("ft-steps", "60"), ("ft-lr", "2e-4")):
                label, validator, _ = self.FIELDS[field_id]
                yield Label(label, classes="field-label")
                yield Input(default, id=field_id, compact=True, validators=[validator])

    def on_mount(self) -> None:
        self.query_one("#ft-file").display = False

    def set_choices(self, models: list[str], active: str | None, collections: list[str]) -> None:
        base = self.query_one("#ft-base", Select)
        keep = base.value if base.value in models else active if active in models else None
        base.set_options((m, m) for m in models)
        if keep:
            base.value = keep
        data = self.query_one("#ft-data", Select)
        keep = data.value
        data.set_options([*((f"collection {c}", c) for c in collections), ("JSONL file…", FILE)])
        if keep in (*collections, FILE):
            data.value = keep
        elif collections:
            data.value = collections[0]

    @on(Select.Changed, "#ft-data")
    def data_changed(self, event: Select.Changed) -> None:
        self.query_one("#ft-file").display = event.value == FILE

    def values(self) -> tuple[dict | None, list[str]]:
        """(settings, []) when valid, else (None, what is wrong)."""
        errors = []
        base = self.query_one("#ft-base", Select).value
        if base is Select.NULL:
            errors.append("choose a base model (import or prepare one in Models, F4)")
        data = self.query_one("#ft-data", Select).value
        file = self.query_one("#ft-file", Input).value.strip()
        if data is Select.NULL:
            errors.append("choose a collection or a JSONL file to train on")
        elif data == FILE and not _jsonl(file):
            errors.append(f"{file or '(empty)'}: not an existing .jsonl file")
        for field_id, (_, validator, message) in self.FIELDS.items():
            if not validator.validate(self.query_one(f"#{field_id}", Input).value.strip()).is_valid:
                errors.append(message)
        if errors:
            return None, errors
        return {"base": str(base), "collection": None if data == FILE else str(data),
                "jsonl": str(Path(file).expanduser().resolve()) if data == FILE else None,
                "bits": int(self.query_one("#ft-bits", Select).value),
                "rank": int(self.query_one("#ft-rank", Input).value),
                "steps": int(self.query_one("#ft-steps", Input).value),
                "lr": float(self.query_one("#ft-lr", Input).value)}, []


def trainer_args(values: dict) -> list[str]:
    """The form as `edgerag finetune train` arguments (stdout: one JSON event per line)."""
    args = ["--base", values["base"]]
    args += ["--collection", values["collection"]] if values["collection"] else ["--data", values["jsonl"]]
    args += ["--bits", str(values["bits"]), "--rank", str(values["rank"]), "--steps", str(values["steps"]),
             "--lr", str(values["lr"]), "--events-jsonl", "-"]
    return args
