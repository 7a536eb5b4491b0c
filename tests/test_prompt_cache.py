"""The system prompt's saved KV state (edgerag/generate/prefix_cache.py): a fresh process loads it instead of
evaluating the prefix again, and the answer is the same token for token; a corrupt, truncated or mismatched file
is ignored and rebuilt. Fast tests on a tiny random-weight llama with SmolLM2's tokenizer and chat template; the
bundled model under `slow`."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgerag.generate.llm import Generator
from edgerag.generate.prompts import messages_for

from tinyllama import bundled_gguf, make_tiny_gguf


class Src:
    def __init__(self, text, path="guide.txt"):
        self.text, self.path, self.page, self.heading = text, path, None, None


QUESTIONS = [("How long does the warranty last?", [Src("The Aurora K3 warranty lasts two years from purchase.")]),
             ("Who built the lighthouse?", [Src("The Old Harbour Lighthouse was built by Ada Lind in 1871."),
                                             Src("It was electrified in 1923.", "history.md")])]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


def answer(gen: Generator, question, sources, max_tokens=16) -> tuple[str, int]:
    text = gen.chat(messages_for(question, sources), max_tokens=max_tokens, temperature=0.0)
    return text, gen.stats.completion_tokens


def fresh(path, cache, **kw) -> Generator:
    return Generator(path, n_ctx=512, threads=1, prompt_cache=cache, **kw)


def test_loaded_state_gives_the_same_tokens_and_skips_the_prefix(tiny, tmp_path):
    cache = tmp_path / "prompt-state"
    plain = [answer(fresh(tiny, None), q, s) for q, s in QUESTIONS]
    assert all(n > 0 for _, n in plain)

    saver = fresh(tiny, cache)
    assert [answer(saver, q, s) for q, s in QUESTIONS] == plain
    files = list(cache.glob("*.kv"))
    assert len(files) == 1 and not list(cache.glob(".tmp-*"))

    for q, s in QUESTIONS:  # each a new "process": the state comes from the file
        loader = fresh(tiny, cache)
        got = answer(loader, q, s)
        assert loader._primed and loader.stats.reused_tokens > 20  # the system turn was not evaluated again
        assert got == plain[QUESTIONS.index((q, s))]
    assert list(cache.glob("*.kv")) == files


def test_prime_reports_saved_then_loaded_and_skips_without_cache(tiny, tmp_path):
    from edgerag.generate.prompts import SYSTEM_PROMPT

    cache = tmp_path / "c"
    assert fresh(tiny, cache).prime(SYSTEM_PROMPT) == "saved"
    assert fresh(tiny, cache).prime(SYSTEM_PROMPT) == "loaded"
    assert fresh(tiny, None).prime(SYSTEM_PROMPT) == "skipped"
    gen = fresh(tiny, cache)
    gen.chat(messages_for(*QUESTIONS[0]), max_tokens=2, temperature=0.0, reuse_cache=False)
    assert gen.stats.reused_tokens == 0  # the no-reuse baseline evaluates everything


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped byte", "empty"])
def test_a_damaged_state_file_is_ignored_and_rebuilt(tiny, tmp_path, damage):
    cache = tmp_path / "c"
    expected = answer(fresh(tiny, None), *QUESTIONS[1])
    answer(fresh(tiny, cache), *QUESTIONS[1])
    (path,) = cache.glob("*.kv")
    raw = path.read_bytes()
    path.write_bytes({"garbage": b"not a state" * 100, "truncated": raw[:len(raw) // 2],
                      "flipped byte": raw[:-100] + bytes([raw[-100] ^ 0xFF]) + raw[-99:], "empty": b""}[damage])
    gen = fresh(tiny, cache)
    from edgerag.generate.prompts import SYSTEM_PROMPT

    assert gen.prime(SYSTEM_PROMPT) == "saved"
    assert path.read_bytes() == raw  # rebuilt: the same state again
    gen2 = fresh(tiny, cache)
    assert answer(gen2, *QUESTIONS[1]) == expected


def test_another_context_size_or_model_file_does_not_use_the_state(tiny, tmp_path):
    from edgerag.generate.prompts import SYSTEM_PROMPT

    cache = tmp_path / "c"
    assert fresh(tiny, cache).prime(SYSTEM_PROMPT) == "saved"
    assert Generator(tiny, n_ctx=256, threads=1, prompt_cache=cache).prime(SYSTEM_PROMPT) == "saved"
    assert len(list(cache.glob("*.kv"))) == 2
    other = make_tiny_gguf(tmp_path / "other.gguf", seed=1)  # same shapes, other weights
    assert fresh(other, cache).prime(SYSTEM_PROMPT) == "saved"
    assert fresh(tiny, cache, model_sha256="0" * 64).prime(SYSTEM_PROMPT) == "saved"  # the store's checksum
    assert len(list(cache.glob("*.kv"))) == 4


@pytest.mark.slow
def test_bundled_model_answers_identically_with_the_saved_state(tmp_path):
    """The real SmolLM2 GGUF, greedy: the same answer from a process that evaluated everything, one that saved
    the state and one that loaded it."""
    gguf = bundled_gguf()
    cache = tmp_path / "c"
    kw = dict(n_ctx=2048, threads=1)
    for q, s in QUESTIONS:
        plain = Generator(gguf, **kw).chat(messages_for(q, s), max_tokens=48, temperature=0.0)
        saved = Generator(gguf, prompt_cache=cache, **kw).chat(messages_for(q, s), max_tokens=48, temperature=0.0)
        loader = Generator(gguf, prompt_cache=cache, **kw)
        loaded = loader.chat(messages_for(q, s), max_tokens=48, temperature=0.0)
        assert plain and plain == saved == loaded
        assert loader.stats.reused_tokens > 50
