"""Bytes to str for text-like formats: BOM, then UTF-16/32 without BOM, then UTF-8, then a guessed 8-bit code page."""

from __future__ import annotations

import codecs
import re

from .base import UnreadableFile

# UTF-32 first: its LE BOM starts with the UTF-16 LE BOM
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")  # C0 controls that text files do not contain (ESC is allowed)


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """(codec, BOM length) when data starts with a Unicode byte-order mark."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc, len(bom)
    return None


def _wide_encoding(sample: bytes) -> str | None:
    """UTF-16/32 without a BOM, recognised by where the NUL bytes of Latin-script text fall."""
    n = len(sample) - len(sample) % 4
    if n < 4:
        return None
    nul = [sum(1 for i in range(r, n, 4) if sample[i] == 0) / (n // 4) for r in range(4)]
    if min(nul[1:]) > 0.9:
        return "utf-32-le"
    if min(nul[:3]) > 0.9:
        return "utf-32-be"
    even, odd = (nul[0] + nul[2]) / 2, (nul[1] + nul[3]) / 2
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


def _guess_8bit(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return "cp1252"
    best = matches[0]
    # charset-normalizer often ties cp1250/cp1252/mac_* on short Western text; cp1252 is by far the likeliest then
    for m in matches:
        if m.encoding == "cp1252" and m.chaos <= best.chaos + 0.01:
            return "cp1252"
    return best.encoding


def decode_text(data: bytes) -> str:
    """Decode a text file of unknown encoding; raise UnreadableFile('binary content') for non-text bytes."""
    found = bom_encoding(data)
    if found:
        enc, skip = found
        text = data[skip:].decode(enc, errors="replace")
    elif b"\x00" in data[:8192]:
        # NULs never occur in 8-bit or UTF-8 text: either UTF-16/32 without BOM, or not text at all
        enc = _wide_encoding(data[:8192])
        if enc is None:
            raise UnreadableFile("binary content")
        text = data[: len(data) - len(data) % (4 if "32" in enc else 2)].decode(enc, errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            enc = _guess_8bit(data)
            try:
                text = data.decode(enc)
            except (UnicodeDecodeError, LookupError):
                text = data.decode("latin-1")  # every byte maps, so this never fails
    # A file of arbitrary bytes can decode "successfully"; real text has (almost) no C0 control characters
    if len(_BINARY.findall(text[:100_000])) > max(2, len(text[:100_000]) // 100):
        raise UnreadableFile("binary content")
    return text
