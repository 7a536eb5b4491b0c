"""Which generator a QA system uses: `--generator SPEC`, checked before any work starts.

SPEC is `[LABEL=]MODEL[+ADAPTER]`:
- MODEL: a model name in the store, or a path to a GGUF file; omitted (no --generator) means the active one.
- ADAPTER: a LoRA adapter GGUF path, or the name of a `gguf-lora` model in the store, applied by llama.cpp.
- LABEL: what tables and plots call the system (default: the model name or file stem, `+adapter` appended).
Examples: `smollm2-135m-instruct-q4_1`, `runs/ft/model-q8.gguf`, `base=smollm2-135m-instruct-q4_1`,
`tuned=smollm2-135m-instruct-q4_1+runs/ft/adapter.gguf`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..config import Settings
from ..errors import ModelError


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(".gguf") or "/" in text or "\\" in text


@dataclass(frozen=True)
class GeneratorSpec:
    model: str | None = None
    adapter: str | None = None
    label: str = ""

    @classmethod
    def parse(cls, text: str | None) -> "GeneratorSpec":
        if not text:
            return cls()
        label = ""
        head, sep, rest = text.partition("=")
        if sep and head and not _looks_like_path(head):
            label, text = head, rest
        model, adapter = text, None
        if "+" in text:
            base, _, tail = text.rpartition("+")
            if base:
                model, adapter = base, tail
        return cls(model or None, adapter or None, label)

    def resolve(self, settings: Settings) -> "GeneratorSpec":
        """Absolute paths, store names checked, label filled; raises ModelError/ModelNotFound on a bad spec."""
        from ..models import ModelStore

        store = ModelStore(settings.models_dir)
        if self.model is None:
            model = store.active("generator").name
        elif _looks_like_path(self.model) and not store.exists(self.model):
            path = Path(self.model).expanduser()
            if not path.is_file():
                raise ModelError(f"{path}: generator GGUF file not found")
            model = str(path.resolve())
        else:
            manifest = store.get(self.model)
            if manifest.format != "gguf":
                raise ModelError(f"{manifest.name} is a {manifest.format} model, not a GGUF generator")
            model = manifest.name
        adapter = None
        if self.adapter:
            path = Path(self.adapter).expanduser()
            if path.is_file():
                adapter = str(path.resolve())
            elif store.exists(self.adapter) and store.get(self.adapter).format == "gguf-lora":
                adapter = str(store.main_path(self.adapter))
            else:
                raise ModelError(f"{self.adapter}: LoRA adapter not found (a GGUF file or a gguf-lora model name)")
        label = self.label or Path(model).stem + (f"+{Path(adapter).stem}" if adapter else "")
        return replace(self, model=model, adapter=adapter, label=label)

    def load(self, settings: Settings):
        from ..generate.llm import Generator, load_generator, repeat_penalty_for
        from ..models import ModelStore

        lora = Path(self.adapter) if self.adapter else None
        if self.model and Path(self.model).is_absolute() and not ModelStore(settings.models_dir).exists(self.model):
            return Generator(Path(self.model), n_ctx=settings.context_tokens, threads=settings.n_threads,
                             seed=settings.seed, lora_path=lora, name=self.label, gpu_layers=settings.gpu_layers,
                             repeat_penalty=repeat_penalty_for(settings, finetuned=lora is not None))
        return load_generator(settings, self.model, lora_path=lora)

    def as_dict(self) -> dict:
        return asdict(self)


def resolve_all(settings: Settings, specs: list[GeneratorSpec]) -> list[GeneratorSpec]:
    """Resolve every spec up front and make labels unique (tables are keyed by label)."""
    out: list[GeneratorSpec] = []
    for spec in specs or [GeneratorSpec()]:
        r = spec.resolve(settings)
        label, n = r.label, 1
        while any(o.label == label for o in out):
            n += 1
            label = f"{r.label}#{n}"
        out.append(replace(r, label=label))
    return out
