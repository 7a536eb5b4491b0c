"""The generator: a GGUF model in llama.cpp (llama-cpp-python), chat template taken from the GGUF itself.

llama-cpp-python reuses the KV cache for the longest common token prefix between consecutive calls, so a chat
whose earlier turns are resent unchanged only processes the new turn. `reuse_cache=False` resets the state
first (the baseline the chat benchmark compares against). `stats` says how many prompt tokens were reused.
With `prompt_cache` (a folder), a fresh process loads the system prompt's saved KV state before its first prompt
instead of evaluating it again (prefix_cache.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from . import prefix_cache
from .prompts import SYSTEM_PROMPT


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV cache was kept from the previous call (not evaluated again)
    completion_tokens: int = 0
    first_token_s: float = 0.0  # from the call to the first streamed token
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        gen = self.total_s - self.first_token_s
        return self.completion_tokens / gen if gen > 0 else 0.0


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp logs model loading to fd 2 even with verbose=False; keep the terminal clean."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# llama.cpp's repeat penalty divides the logit of every token among the last 64 the answer produced. The bundled
# chat model needs it: greedy without it, 10 of 150 XQuAD answers looped to max_tokens (1 with it). A model edgerag
# finetuned rarely loops (1 of 250), and there the penalty miscites: SmolLM2 writes numbers digit by digit, so an
# answer holding a "1" ("in 1943") is pushed to cite [2] instead of [1]. Without it v16's open-retrieval answers cite
# a source that supports them 77.6% of the time instead of 60.2% (docs/results/decoding).
REPEAT_PENALTY_BASE = 1.1
REPEAT_PENALTY_FINETUNED = 1.0


def repeat_penalty_for(settings, finetuned: bool) -> float:
    """The user's `repeat_penalty` setting, else the generator's own by whether edgerag finetuned it."""
    return settings.repeat_penalty or (REPEAT_PENALTY_FINETUNED if finetuned else REPEAT_PENALTY_BASE)


class Generator:
    def __init__(self, model_path: Path, n_ctx: int = 2048, threads: int = 0, seed: int = 0,
                 lora_path: Path | None = None, name: str = "", gpu_layers: int = 0,
                 prompt_cache: Path | None = None, model_sha256: str | None = None,
                 repeat_penalty: float = REPEAT_PENALTY_BASE):
        from llama_cpp import Llama

        self.name = name or Path(model_path).stem
        if not Path(model_path).is_file():
            raise ModelError(f"{model_path}: generator model file is missing")
        try:
            with _quiet_stderr():
                # gpu_layers: offloaded layers (-1 all) when llama-cpp-python has a GPU backend, else ignored
                self.llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=threads or None,
                                 n_batch=512, seed=seed, verbose=False, n_gpu_layers=gpu_layers,
                                 lora_path=str(lora_path) if lora_path else None)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_path}: llama.cpp cannot load it ({exc})") from exc
        self.n_ctx = n_ctx
        self.repeat_penalty = repeat_penalty
        self.stats = GenerationStats()
        self._generate = self.llm.generate
        self.llm.generate = self._counted_generate  # create_chat_completion tokenizes, then calls generate
        recurrent = getattr(self.llm, "_is_recurrent", False) or getattr(self.llm, "_is_hybrid", False)
        self.prompt_cache = None if recurrent else prompt_cache  # a recurrent state cannot be cut back to a prefix
        self._identity = {"model": prefix_cache.file_identity(Path(model_path), model_sha256),
                          "lora": prefix_cache.file_identity(lora_path), "n_ctx": n_ctx, "n_batch": 512,
                          "gpu_layers": gpu_layers}
        self._primed: set[str] = set()  # system prompts whose state this process has loaded or saved
        self._capture = False

    def _counted_generate(self, tokens, *args, **kwargs):
        """Record the prompt's length and how much of it llama.cpp keeps from its cache (its own rule: the longest
        common prefix, one token less when the whole prompt matches, since the last one is evaluated again)."""
        from llama_cpp import Llama

        tokens = list(tokens)
        if self._capture:
            raise _Captured(tokens)
        common = Llama.longest_token_prefix(self.llm._input_ids, tokens) if self.llm.n_tokens else 0
        self.stats.prompt_tokens = len(tokens)
        self.stats.reused_tokens = common - 1 if common and common == len(tokens) else common
        return self._generate(tokens, *args, **kwargs)

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        """The token ids llama-cpp-python's chat completion would evaluate for `messages` (template + tokenizer),
        taken from its call to generate, which is stopped before anything is evaluated."""
        self._capture = True
        try:
            self.llm.create_chat_completion(messages=messages, max_tokens=1)
        except _Captured as captured:
            return captured.tokens
        finally:
            self._capture = False
        raise RuntimeError("llama-cpp-python did not call generate")

    def prime(self, system: str) -> str:
        """Before the first prompt of a fresh context: load the saved KV state of the prompt's fixed opening (the
        system turn and the start of the user turn: the common prefix of two prompts that differ only after it),
        or evaluate it and save it. Returns "loaded", "saved" or "skipped"."""
        from llama_cpp import Llama

        if self.prompt_cache is None or system in self._primed or self.llm.n_tokens:
            return "skipped"
        self._primed.add(system)
        first = self.prompt_tokens([{"role": "system", "content": system}, {"role": "user", "content": "Question: a"}])
        other = self.prompt_tokens([{"role": "system", "content": system}, {"role": "user", "content": "Sources:\n"}])
        tokens = first[:Llama.longest_token_prefix(first, other)]
        if len(tokens) < 2:
            return "skipped"
        key = prefix_cache.cache_key(tokens, **self._identity)
        if prefix_cache.load(self.prompt_cache, key, self.llm, tokens):
            return "loaded"
        self.llm.eval(tokens)
        try:
            prefix_cache.save(self.prompt_cache, key, self.llm)
        except OSError:
            pass  # a read-only data folder: the next start evaluates the prefix again, nothing else changes
        return "saved"

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream_chat(self, messages: list[dict], max_tokens: int = 256, temperature: float = 0.1,
                    reuse_cache: bool = True, stop: list[str] | None = None) -> Iterator[str]:
        """Yield text pieces as they are generated; self.stats holds timings when the iterator finishes."""
        if not reuse_cache:
            self.llm.reset()
        self.stats = stats = GenerationStats()
        start = time.perf_counter()
        if reuse_cache and messages and messages[0] == {"role": "system", "content": SYSTEM_PROMPT}:
            self.prime(SYSTEM_PROMPT)  # the runtime's one system prompt; other callers' are not kept on disk
        stream = self.llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=temperature,
                                                 top_k=40, top_p=0.95, stream=True, stop=stop,
                                                 repeat_penalty=self.repeat_penalty)
        try:
            for chunk in stream:
                piece = chunk["choices"][0]["delta"].get("content")
                if not piece:
                    continue
                if stats.completion_tokens == 0:
                    stats.first_token_s = time.perf_counter() - start
                stats.completion_tokens += 1
                yield piece
        finally:
            stream.close()
            stats.total_s = time.perf_counter() - start

    def chat(self, messages: list[dict], **kwargs) -> str:
        return "".join(self.stream_chat(messages, **kwargs))


class _Captured(Exception):
    def __init__(self, tokens: list[int]):
        super().__init__("prompt tokens captured")
        self.tokens = tokens


def load_generator(settings, name: str | None = None, lora_path: Path | None = None) -> Generator:
    """The named (or active) generator from the models store, with the system prompt's KV state cached under
    <data>/cache/prompt-state."""
    from ..models import ModelStore

    store = ModelStore(settings.models_dir)
    manifest = store.get(name) if name else store.active("generator")
    if manifest.format != "gguf":
        raise ModelError(f"{manifest.name} is a {manifest.format} model; the runtime needs a GGUF generator")
    main = next((f for f in manifest.files if f.path == manifest.main_file), None)
    finetuned = lora_path is not None or manifest.finetuned_by_edgerag
    return Generator(store.main_path(manifest.name), n_ctx=settings.context_tokens, threads=settings.n_threads,
                     seed=settings.seed, lora_path=lora_path, name=manifest.name, gpu_layers=settings.gpu_layers,
                     prompt_cache=settings.data_dir / "cache" / "prompt-state" if settings.prompt_cache else None,
                     model_sha256=main.sha256 if main else None,
                     repeat_penalty=repeat_penalty_for(settings, finetuned))
