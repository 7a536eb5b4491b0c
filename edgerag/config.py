"""One typed settings object: defaults, then the TOML file, then EDGERAG_* environment variables.

Paths have one home here, chosen in this order:
- `EDGERAG_HOME=/some/dir`: models in `<dir>/models`, collections and runs in `<dir>/data`, config in
  `<dir>/edgerag.toml` (how tests isolate themselves and how a user keeps everything in one place);
- running from a source checkout (a pyproject.toml naming edgerag next to the package, as after `make install`):
  the repository's `models/` and `.edgerag/`, config `<repo>/edgerag.toml`, so `make demo` stays self-contained;
- otherwise (a normal `pip install`/pipx): the platform's user data directory (platformdirs: XDG on Linux,
  ~/Library/Application Support on macOS, %LOCALAPPDATA% on Windows) and its user config directory. Never the
  installed package's own folder.
`models_dir` and `data_dir` in the config file or environment override any of these.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # requires-python allows 3.10: the same parser from PyPI (a dependency there, see pyproject.toml)
    import tomli as tomllib

from .errors import ConfigError
from .offline import keep_local_files_in

APP_NAME = "edgerag"


def source_checkout() -> Path | None:
    """The repository root when edgerag runs from its source tree, else None."""
    root = Path(__file__).resolve().parent.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return root if 'name = "edgerag"' in text else None


def _default_home() -> Path | None:
    home = os.environ.get("EDGERAG_HOME")
    return Path(home).expanduser().resolve() if home else None


def user_dirs() -> tuple[Path, Path]:
    """(data root, config folder) for an installed edgerag without EDGERAG_HOME."""
    import platformdirs

    return (Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)))


def _default_models_dir() -> Path:
    if home := _default_home():
        return home / "models"
    if repo := source_checkout():
        return repo / "models"
    return user_dirs()[0] / "models"


def _default_data_dir() -> Path:
    if home := _default_home():
        return home / "data"
    if repo := source_checkout():
        return repo / ".edgerag"
    return user_dirs()[0] / "data"


@dataclass
class Settings:
    # Where models live: one folder per model with a manifest.json (see edgerag/models/).
    models_dir: Path = field(default_factory=_default_models_dir)
    # Where collections (SQLite + hnswlib index) and run outputs live.
    data_dir: Path = field(default_factory=_default_data_dir)
    # Collection used when a command is not given --collection.
    default_collection: str = "default"
    # CPU threads for onnxruntime and llama.cpp; 0 means "all physical cores we can see".
    threads: int = 0
    # Generator layers llama.cpp offloads to a GPU (n_gpu_layers): -1 all, 0 none. Needs llama-cpp-python built
    # with a GPU backend (README: GPU); the CPU build ignores it. `edgerag config show` says what is used.
    gpu_layers: int = -1
    # onnxruntime execution providers for the embedder, in order of preference: "auto" (CUDA, then CPU) or a
    # comma-separated list such as "cuda,cpu" (fall back to the CPU) or "cuda" (CUDA or an error naming the
    # onnxruntime-gpu build). Providers this onnxruntime build lacks are skipped (edgerag/accelerators.py).
    onnx_providers: str = "auto"
    # Chunk size and overlap, counted in embedder tokens (MiniLM truncates at 256 word pieces).
    chunk_tokens: int = 220
    chunk_overlap: int = 32
    # Seconds one file may spend being parsed and chunked during ingest; a file that takes longer (a zip bomb, a
    # pathological PDF) is reported as failed and the run goes on. 0 means no limit.
    file_time_limit: float = 120.0
    # Texts per onnxruntime call when embedding.
    embed_batch_size: int = 32
    # hnswlib build/search parameters; ef_search is raised to at least k at query time.
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    # Retrieval: candidates per retriever, how many chunks reach the prompt, and fusion.
    retrieve_mode: str = "hybrid"
    top_k: int = 4
    candidates: int = 30
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    # Best dense cosine below this means "not found in your documents" without asking the model. Measured with
    # MiniLM on XQuAD: 1% of real questions score below 0.31; 7 of 10 off-topic questions do.
    min_relevance: float = 0.30
    # ... or when no sentence of the sources mentions this share of what the question asks about (its content words,
    # idf-weighted: AnswerEngine.coverage). 0 turns the test off. bench/answerability.py chose 0.30 as the largest that
    # adds at most 5 points of refusals of answerable questions on half of XQuAD-en's questions and on NFCorpus's
    # queries (9.6% -> 13.3%: short titles against abstracts). On the other XQuAD half the gate now refuses 62.1% of
    # questions whose answer was taken out of the sources (similarity alone: 27.5%) and 3.5% of answerable ones
    # (3.4%); HotpotQA: 18% (4%) and 0% (0%). 0.40 would refuse 79% and 8%, but 23% of NFCorpus's queries.
    min_coverage: float = 0.30
    # Each source reaches the model cut to its sentences around the one that best covers the question, at most this
    # many words (retrieve/context.py focus); 0 sends whole chunks. Chosen on 150 XQuAD-en questions with the gold
    # passage (docs/results/focus): the finetuned 135M model's F1 was 20.2 with whole chunks, 22.9 at 80 words,
    # 26.0 at 40 and 26.9 at 20 (no different from 40, and more answers restating the question); 40 keeps a
    # sentence's neighbours for answers that span two.
    focus_words: int = 40
    # Generation.
    context_tokens: int = 2048
    max_tokens: int = 256
    temperature: float = 0.1
    # llama.cpp's penalty on tokens the answer already used; 0 = the generator's own (generate/llm.py
    # `repeat_penalty_for`: 1.0 for a model edgerag finetuned, 1.1 otherwise), 1.0 = none.
    repeat_penalty: float = 0.0
    seed: int = 0
    # Keep the system prompt's KV state under <data>/cache/prompt-state so a new process does not evaluate it again.
    prompt_cache: bool = True

    def __post_init__(self) -> None:
        self.models_dir = Path(self.models_dir).expanduser()
        self.data_dir = Path(self.data_dir).expanduser()
        if self.retrieve_mode not in ("dense", "bm25", "hybrid"):
            raise ConfigError(f"retrieve_mode must be dense, bm25 or hybrid, not {self.retrieve_mode!r}")
        for name in ("chunk_tokens", "embed_batch_size", "top_k", "candidates", "context_tokens", "max_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.focus_words < 0:
            raise ConfigError(f"focus_words must be 0 (whole chunks) or a number of words, not {self.focus_words}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ConfigError("chunk_overlap must be >= 0 and smaller than chunk_tokens")
        for name in ("min_relevance", "min_coverage"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        if not 0 <= self.repeat_penalty <= 2:
            raise ConfigError(f"repeat_penalty must be 0 (the model's own), 1.0 (none) or another value up to 2, "
                              f"not {self.repeat_penalty}")
        if self.gpu_layers < -1:
            raise ConfigError(f"gpu_layers must be -1 (all), 0 (none) or a number of layers, not {self.gpu_layers}")
        from .accelerators import parse_providers

        parse_providers(self.onnx_providers)  # a misspelt provider is a config error now, not at the first search

    @property
    def collections_dir(self) -> Path:
        return self.data_dir / "collections"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def n_threads(self) -> int:
        return self.threads or max(1, os.cpu_count() or 1)

    def as_dict(self) -> dict:
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v) for f in fields(self)}


def config_path() -> Path:
    """The TOML file read by load_settings: $EDGERAG_CONFIG, else edgerag.toml in $EDGERAG_HOME, the source
    checkout, or the user config folder (in that order, as for the default paths)."""
    if explicit := os.environ.get("EDGERAG_CONFIG"):
        return Path(explicit).expanduser()
    folder = _default_home() or source_checkout() or user_dirs()[1]
    return folder / "edgerag.toml"


def _coerce(name: str, kind: type, raw):
    try:
        if kind is Path:
            return Path(raw)
        if kind is bool:
            return str(raw).lower() in ("1", "true", "yes", "on")
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: cannot read {raw!r} as {kind.__name__}") from exc


def load_settings(**overrides) -> Settings:
    """Defaults < TOML file < EDGERAG_* environment < explicit overrides (CLI flags the user typed)."""
    types = {f.name: f.type for f in fields(Settings)}
    type_map = {"Path": Path, "int": int, "float": float, "str": str, "bool": bool}
    values: dict = {}
    path = config_path()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        unknown = set(data) - set(types)
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        values.update(data)
    for name in types:
        env = os.environ.get(f"EDGERAG_{name.upper()}")
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    typed = {k: _coerce(k, type_map[types[k]], v) for k, v in values.items()}
    settings = Settings(**typed)
    # Dependencies' caches and temporary files go with our data, not into the user's home or /tmp.
    keep_local_files_in(settings.data_dir)
    return settings


def replace(settings: Settings, **changes) -> Settings:
    return dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
