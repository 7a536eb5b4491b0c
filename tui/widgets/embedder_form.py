"""The embedder-adaptation form (`edgerag embedder run`): collection, loss, pseudo-queries, steps, promote; and the
collection's current and previous embedder, with the rollback to the previous one."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import Integer
from textual.widgets import Button, Checkbox, Input, Label, Select

from edgerag.embedtune import MAX_QUERIES

QUERIES = Integer(10, 100_000)
STEPS = Integer(1, 100_000)


class EmbedderForm(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label("collection", classes="field-label")
            yield Select([], prompt="collection", id="em-collection", compact=True)
            yield Label("loss", classes="field-label")
            # distill: listwise KL to the hybrid retriever's scores (the default); infonce: the contrastive ablation
            yield Select([("distill (listwise)", "distill"), ("infonce", "infonce")], value="distill",
                         allow_blank=False, id="em-loss", compact=True)
        with Horizontal(classes="form-row", id="em-options"):
            yield Label("queries", classes="field-label")
            yield Input(str(MAX_QUERIES), id="em-queries", compact=True, validators=[QUERIES])
            yield Label("steps", classes="field-label")
            yield Input("", placeholder="1 epoch", id="em-steps", compact=True)
            yield Checkbox("promote if the gate passes", True, id="em-promote", compact=True)
        with Horizontal(classes="form-row"):
            yield Label(Text("embedder: …", style="dim"), id="em-current")
            yield Button("Roll back", id="em-rollback", disabled=True, compact=True)

    def set_choices(self, collections: list[str]) -> None:
        select = self.query_one("#em-collection", Select)
        keep = select.value
        select.set_options((c, c) for c in collections)
        if keep in collections:
            select.value = keep
        elif collections:
            select.value = collections[0]

    @property
    def collection(self) -> str | None:
        value = self.query_one("#em-collection", Select).value
        return None if value is Select.NULL else str(value)

    def show_embedders(self, current: str | None, previous: str | None) -> None:
        """What the chosen collection answers with now, and what a rollback would return it to."""
        self.query_one("#em-current", Label).update(Text.assemble(
            ("embedder ", "dim"), current or "the active one", ("  previous ", "dim"), previous or "none"))
        self.query_one("#em-rollback", Button).disabled = previous is None

    def values(self) -> tuple[dict | None, list[str]]:
        """(settings, []) when valid, else (None, what is wrong)."""
        errors = []
        if self.collection is None:
            errors.append("choose a collection to adapt the embedder to (add one in Library, F3)")
        queries = self.query_one("#em-queries", Input).value.strip()
        if not QUERIES.validate(queries).is_valid:
            errors.append("queries: a whole number from 10 to 100000")
        steps = self.query_one("#em-steps", Input).value.strip()
        if steps and not STEPS.validate(steps).is_valid:
            errors.append("steps: empty (one epoch) or a whole number from 1 to 100000")
        if errors:
            return None, errors
        return {"collection": self.collection, "loss": str(self.query_one("#em-loss", Select).value),
                "queries": int(queries), "steps": int(steps) if steps else None,
                "promote": self.query_one("#em-promote", Checkbox).value}, []


def embedder_args(values: dict) -> list[str]:
    """The form as `edgerag embedder run` arguments (stdout: one JSON event per line)."""
    args = ["--collection", values["collection"], "--loss", values["loss"], "--max-queries", str(values["queries"])]
    args += ["--steps", str(values["steps"])] if values["steps"] else []
    args += ["--promote"] if values["promote"] else []
    return args + ["--events-jsonl", "-"]
