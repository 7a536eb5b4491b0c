"""The system prompt's KV state, saved once and loaded on every later start (issue 14's cold start).

Every `ask`/`chat` prompt opens with the same tokens: the chat template's system turn holding SYSTEM_PROMPT, then
the opening of the user turn. A fresh process would evaluate them again each time; instead the llama.cpp state
after evaluating just those tokens (their KV cells and the token ids) is written to
`<data>/cache/prompt-state/<key>.kv`, and a later process loads it before its first prompt. llama-cpp-python's
own prefix match then evaluates only the rest of the prompt, exactly as a chat's second turn does in-process.

The key covers everything the state depends on: the model file (the store's sha256, else path + size + mtime),
a LoRA adapter's, n_ctx, n_batch, GPU offload, the llama-cpp-python version, and the prefix's token ids (so the
prompt text and the chat template). A file that does not match, fails its checksum or is refused by llama.cpp is
ignored and rebuilt; writes are temp file + rename, so a killed writer leaves no torn file under the key.
It never changes an answer: the state holds the same KV cells the full prompt would compute (tests check that
greedy output is identical with and without it).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

MAGIC = b"EDGERAG-KV1\n"
SUFFIX = ".kv"


def file_identity(path: Path | None, sha256: str | None = None) -> str | None:
    """The store's checksum when known (hashing a GGUF would cost more than the cache saves), else stat fields."""
    if path is None:
        return None
    if sha256:
        return f"sha256:{sha256}"
    st = Path(path).stat()
    return f"stat:{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}"


def cache_key(tokens: list[int], **identity) -> str:
    import llama_cpp

    fields = {"tokens": list(map(int, tokens)), "llama_cpp": llama_cpp.__version__, **identity}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def save(folder: Path, key: str, llm) -> Path:
    """Write llm's current state (the prefix just evaluated) under `key`, atomically."""
    state = llm.save_state()
    blob = bytes(state.llama_state)
    header = json.dumps({"key": key, "n_tokens": int(state.n_tokens), "seed": int(state.seed),
                         "input_ids": [int(t) for t in np.asarray(state.input_ids)[:state.n_tokens]],
                         "size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}).encode()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<I", len(header)) + header + blob)
            f.flush()
            os.fsync(f.fileno())
        path = folder / f"{key}{SUFFIX}"
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(folder: Path, key: str, llm, tokens: list[int]) -> bool:
    """Restore the state saved under `key` into llm (which must hold no tokens yet). False, with llm reset, when
    there is none or it is unusable; the caller then evaluates the prefix and saves it again."""
    from llama_cpp import LlamaState

    path = folder / f"{key}{SUFFIX}"
    try:
        raw = path.read_bytes()
    except OSError:
        return False
    try:
        if not raw.startswith(MAGIC):
            raise ValueError("not a prompt-state file")
        start = len(MAGIC) + 4
        (n,) = struct.unpack("<I", raw[len(MAGIC):start])
        header = json.loads(raw[start:start + n])
        blob = raw[start + n:]
        if header["key"] != key or header["input_ids"] != list(tokens) or header["n_tokens"] != len(tokens):
            raise ValueError("saved for another prefix")
        if len(blob) != header["size"] or hashlib.sha256(blob).hexdigest() != header["sha256"]:
            raise ValueError("checksum mismatch")
        input_ids = np.zeros(llm.n_ctx(), dtype=np.intc)
        input_ids[:len(tokens)] = tokens
        # Only the last row of scores is ever read, and the next decode overwrites it: one zero row, broadcast.
        llm.load_state(LlamaState(input_ids=input_ids, scores=np.zeros((1, llm.n_vocab()), dtype=np.single),
                                  n_tokens=len(tokens), llama_state=blob, llama_state_size=len(blob),
                                  seed=header["seed"]))
        return True
    except Exception:  # corrupt, truncated, another model's state refused by llama.cpp: rebuild it
        # n_tokens back to 0; the next eval drops every KV cell from position n_tokens on (llama-cpp-python's
        # Llama.eval), so whatever a refused load left in the cache is never read.
        llm.reset()
        path.unlink(missing_ok=True)
        return False
