"""A SentencePiece vocabulary from a GGUF (`tokenizer.ggml.model = llama`: Gemma, TinyLlama, Mistral), rebuilt as a
`tokenizers` BPE that splits text the way llama.cpp's SPM tokenizer does.

transformers converts such a vocabulary by architecture, for Gemma as a Unigram model (the best-scoring
segmentation), but llama.cpp does not segment by Viterbi: starting from characters it repeatedly merges the
adjacent pair whose concatenation is a vocabulary piece with the highest score, and falls back to <0xNN> byte
pieces for characters it lacks. A BPE whose merge list is every (left, right) split of every piece, ranked by the
piece's score, makes the same choice at every step. Around that, llama.cpp's rules: pieces of type CONTROL are
special tokens, USER_DEFINED pieces are matched in the raw text before anything else, spaces become "▁", and a
"▁" is put in front of the text (and after each special piece) only where the GGUF says `add_space_prefix`.
base.verify_tokenizer still compares the result with llama.cpp's ids before anything is trained on it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import require

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6  # llama.cpp's token types


def merges_by_score(tokens: list[str], scores: list[float], mergeable: set[int]) -> list[tuple[str, str]]:
    """Every split of a mergeable piece into two vocabulary pieces, highest-scoring piece first (ties: lower id)."""
    index = {t: i for i, t in enumerate(tokens)}
    merges = []
    for i in sorted(mergeable, key=lambda i: (-scores[i], i)):
        piece = tokens[i]
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in index and right in index:
                merges.append((left, right))
    return merges


def spm_tokenizer(gguf_path: Path):
    """A PreTrainedTokenizerFast for the GGUF's SentencePiece vocabulary, with its specials and chat template."""
    transformers = require("transformers")
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    fields = GGUFReader(str(gguf_path)).fields

    def get(key, default=None):
        return fields[key].contents() if key in fields else default

    tokens, scores = get("tokenizer.ggml.tokens"), get("tokenizer.ggml.scores")
    types = get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    unk = get("tokenizer.ggml.unknown_token_id", 0)
    # llama.cpp merges any two symbols whose concatenation is a piece, whatever its type: a user-defined "▁▁" can
    # come from two spaces that were not matched as raw text
    mergeable = set(range(len(tokens)))
    backend = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                                   merges=merges_by_score(tokens, scores, mergeable), unk_token=tokens[unk],
                                   byte_fallback=True, fuse_unk=False))
    steps = [normalizers.Replace(" ", "▁")]
    if get("tokenizer.ggml.add_space_prefix", True):
        steps.insert(0, normalizers.Prepend("▁"))  # per text segment: llama.cpp also adds it after each special
    backend.normalizer = normalizers.Sequence(steps)
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    backend.add_tokens([AddedToken(tokens[i], special=False, normalized=False)
                        for i, kind in enumerate(types) if kind == USER_DEFINED])
    backend.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                for i, kind in enumerate(types) if kind == CONTROL])

    def name(key):
        token_id = get(f"tokenizer.ggml.{key}_token_id")
        return tokens[token_id] if token_id is not None and 0 <= token_id < len(tokens) else None

    bos, eos = name("bos"), name("eos")
    add_bos, add_eos = get("tokenizer.ggml.add_bos_token", True) and bos, get("tokenizer.ggml.add_eos_token", False) and eos
    single = " ".join([*([f"{bos}:0"] if add_bos else []), "$A:0", *([f"{eos}:0"] if add_eos else [])])
    special_ids = [(t, tokens.index(t)) for t in (bos if add_bos else None, eos if add_eos else None) if t]
    backend.post_processor = processors.TemplateProcessing(single=single, special_tokens=special_ids)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token=eos, unk_token=tokens[unk],
        pad_token=name("padding") or eos)
    tokenizer.chat_template = get("tokenizer.chat_template")
    return tokenizer
