"""Load a base generator for training, from a GGUF in the models store or from an HF model folder.

transformers can read a GGUF (dequantized to fp32), but the tokenizer it rebuilds for SmolLM2 is wrong: eos becomes
<|im_start|>, a BOS is prepended, the digit-splitting pre-tokenizer is dropped, and save_pretrained copies the whole
GGUF as tokenizer.model. `repair_tokenizer` rebuilds it from the same vocabulary with the right specials and
pre-tokenizer — for the tokenizer family it was written for (SmolLM2's BPE, `tokenizer.ggml.pre = smollm`) only.
Whatever tokenizer results, its ids are checked against llama.cpp's own tokenizer on probe texts (digits,
accents, code, CJK, the chat markup) before anything is cached: a mismatch is refused, because training on other
token ids than the runtime uses would silently produce a broken model. SentencePiece vocabularies (Gemma,
TinyLlama, Mistral) are rebuilt to split text the way llama.cpp does (spm.py) instead of transformers' converter. The dequantized model is cached once as an HF folder next to the run data (`hf_cache`),
so later loads (and QLoRA's 4-bit quantization) start from safetensors in seconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, require
from ..models import ModelStore
from .archs import ARCHS
from .spm import spm_tokenizer

SUPPORTED_ARCHS = tuple(ARCHS)  # what the GGUF exporter knows how to write back (archs.py)
# transformers picks its GGUF tokenizer converter by architecture, but the GGUF says which tokenizer it has
# (tokenizer.ggml.model): a BPE ("gpt2") vocabulary in a Gemma or Phi-3 file would go through a SentencePiece
# converter and come out wrong, so BPE vocabularies in these take transformers' GPT-2 converter instead.
SPM_ONLY_CONVERTERS = ("gemma2", "gemma3", "phi3")
REPAIRED_PRE_TOKENIZERS = ("smollm",)  # the GGUF pre-tokenizer types repair_tokenizer reproduces
PROBE_TEXTS = (
    "Hello world! How are you today?",
    "In 1998, 12345 people paid $3.50 each; 2+2=4.",
    "naïve café — Ünïcödé ✓ 日本語のテキスト",
    "def f(x):\n    return x ** 2  # squared\n\n\tindented",
    "   leading spaces,  double  spaces and trailing   ",
    "<|im_start|>user\nWhat is the warranty?<|im_end|>\n<|im_start|>assistant\n",
)


@dataclass
class BaseModel:
    name: str  # store name
    hf_dir: Path  # HF-format folder (config, safetensors, fixed tokenizer)
    gguf: Path | None  # the GGUF it came from: its metadata (tokenizer, template) is reused on export
    arch: str


def repair_tokenizer(tokenizer, chat_template: str | None):
    """A clean PreTrainedTokenizerFast with ChatML specials and SmolLM2's digit-splitting pre-tokenizer."""
    transformers = require("transformers")
    from tokenizers import pre_tokenizers, processors

    backend = tokenizer.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    backend.post_processor = processors.ByteLevel(trim_offsets=False)  # no BOS: llama.cpp adds none either
    fixed = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>")
    fixed.chat_template = chat_template
    return fixed


def _gguf_arch(path: Path) -> str:
    return _gguf_fields(path, "general.architecture")[0] or "unknown"


def _gguf_fields(path: Path, *keys: str) -> list:
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    return [fields[k].contents() if k in fields else None for k in keys]


def llama_cpp_token_ids(gguf: Path, texts) -> list[tuple[list[int], list[int]]]:
    """llama.cpp's ids for each text: (without BOS/specials added, with what the GGUF says to add)."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    return [(vocab.tokenize(t.encode("utf-8"), add_bos=False, special=True),
             vocab.tokenize(t.encode("utf-8"), add_bos=True, special=True)) for t in texts]


CHAT_PROBE = [{"role": "system", "content": "Answer from the sources."},
              {"role": "user", "content": "Sources:\n[1] The warranty lasts 2 years.\n\nQuestion: How long?"},
              {"role": "assistant", "content": "Two years [1]."}]


def verify_tokenizer(tokenizer, gguf: Path, name: str) -> None:
    """Refuse a tokenizer whose ids differ from llama.cpp's (the runtime's) on any probe text, and on a chat in the
    model's own template (its turn markup, as training will tokenize it)."""
    probes = list(PROBE_TEXTS)
    if tokenizer.chat_template:
        probes.append(tokenizer.apply_chat_template(CHAT_PROBE, tokenize=False))
    for text, (plain, added) in zip(probes, llama_cpp_token_ids(gguf, probes)):
        for got, want, how in ((tokenizer.encode(text, add_special_tokens=False), plain, "without specials"),
                               (tokenizer.encode(text), added, "with BOS/specials")):
            if got != want:
                at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                raise ModelError(
                    f"{name}: the tokenizer rebuilt from the GGUF disagrees with llama.cpp's on {text!r} ({how}: "
                    f"token {at} is {got[at:at + 3]} vs llama.cpp {want[at:at + 3]}); finetuning on it would "
                    "train other token ids than the runtime uses. Import the model's HF folder instead "
                    "(`edgerag models import DIR` with config.json, safetensors and tokenizer.json)")


def prepare_base(settings, name: str | None = None, say=lambda _m: None) -> BaseModel:
    """Resolve a store generator (default: the active one) to an HF folder ready for transformers/peft."""
    store = ModelStore(settings.models_dir)
    manifest = store.get(name) if name else store.active("generator")
    folder = store.folder(manifest.name)
    if manifest.format == "hf":
        config = json.loads((folder / "config.json").read_text())
        return BaseModel(manifest.name, folder, None, config.get("model_type", "unknown"))
    if manifest.format != "gguf":
        raise ModelError(f"{manifest.name}: cannot finetune a {manifest.format} model (need a GGUF or HF generator)")
    gguf = store.main_path(manifest.name)
    arch = _gguf_arch(gguf)
    if arch not in SUPPORTED_ARCHS:
        raise ModelError(f"{manifest.name}: architecture {arch!r} is not supported for finetuning/export "
                         f"(supported: {', '.join(SUPPORTED_ARCHS)})")
    sha = next(f.sha256 for f in manifest.files if f.path == manifest.main_file)
    cache = settings.data_dir / "hf_cache" / f"{manifest.name}-{sha[:12]}"
    if not (cache / "config.json").is_file():
        say(f"dequantizing {gguf.name} to an HF checkpoint (once)")
        _dequantize_gguf(gguf, cache)
    return BaseModel(manifest.name, cache, gguf, arch)


def _dequantize_gguf(gguf: Path, out: Path) -> None:
    import shutil

    transformers = require("transformers")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tok_model, pre, arch = _gguf_fields(gguf, "tokenizer.ggml.model", "tokenizer.ggml.pre", "general.architecture")
    if tok_model == "gpt2" and arch in SPM_ONLY_CONVERTERS:
        raw = _bpe_tokenizer(gguf)
    elif tok_model == "llama":  # SentencePiece: rebuilt to split like llama.cpp (spm.py), not transformers' Unigram
        raw = spm_tokenizer(gguf)
    else:
        raw = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = repair_tokenizer(raw, raw.chat_template) if tok_model == "gpt2" and pre in REPAIRED_PRE_TOKENIZERS \
        else raw
    verify_tokenizer(tokenizer, gguf, gguf.name)  # before the slow part: a refused model costs seconds
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.bos_token_id = tokenizer.bos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    tmp.rename(out)  # complete or absent: a killed conversion is redone, never half-used


def _bpe_tokenizer(gguf: Path):
    """What AutoTokenizer.from_pretrained(gguf_file=...) builds, with the GPT-2 (byte-level BPE) converter."""
    transformers = require("transformers")
    from transformers.integrations.ggml import convert_gguf_tokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    parsed = load_gguf_checkpoint(str(gguf), return_tensors=False)
    backend, extra = convert_gguf_tokenizer("gpt2", parsed["tokenizer"])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, **{**parsed["tokenizer_config"], **extra})


def load_for_training(base: BaseModel, bits: int, gradient_checkpointing: bool = True):
    """(model, tokenizer): NF4 4-bit via bitsandbytes for bits=4 (QLoRA), bf16 for 16, fp32 for 32."""
    torch = require("torch")
    transformers = require("transformers")
    kwargs = {}
    if bits == 4:
        require("bitsandbytes")
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=False,
            # FSDP (accelerate launch with docs/accelerate/fsdp.yaml) shards parameters of one dtype: the packed
            # 4-bit weights must then be stored as bf16 like the rest (FSDP-QLoRA), not as uint8
            **({"bnb_4bit_quant_storage": torch.bfloat16}
               if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" else {}))
        kwargs["dtype"] = torch.bfloat16
    elif bits == 16:
        kwargs["dtype"] = torch.bfloat16
    elif bits == 32:
        kwargs["dtype"] = torch.float32
    else:
        raise ModelError(f"bits must be 4, 16 or 32, not {bits}")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base.hf_dir), **kwargs)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base.hf_dir))
    if bits == 4:
        peft = require("peft")
        model = peft.prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model, tokenizer
