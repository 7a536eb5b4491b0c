"""Document loaders: a file in, plain text out, in sections that keep what citations need (page, heading path).

load_document() dispatches on the suffix and is the entry point (load_bytes() the same for bytes with a name,
such as an e-mail attachment). It reads the file itself (so every I/O
error is handled in one place), and everything that goes wrong becomes UnreadableFile with a one-line reason:
a bad file is the user's problem to fix, never a crash. Parsers were chosen by bench/parsers.py. Format modules
are imported on first use, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .base import Attachment, LoadedDocument, Section, UnreadableFile
from .code import CODE_SUFFIXES
from .encoding import decode_text

__all__ = ["SUPPORTED_SUFFIXES", "Attachment", "LoadedDocument", "Section", "UnreadableFile", "decode_text",
           "load_bytes", "load_document", "unsupported_reason"]

# suffix -> (module, format name)
_LOADERS = {
    ".txt": ("text", "txt"),
    ".text": ("text", "txt"),
    ".rst": ("rst", "rst"),
    ".org": ("org", "org"),
    ".md": ("markdown", "md"),
    ".markdown": ("markdown", "md"),
    ".mdown": ("markdown", "md"),
    ".mkd": ("markdown", "md"),
    ".html": ("html", "html"),
    ".htm": ("html", "html"),
    ".xhtml": ("html", "html"),
    ".pdf": ("pdf", "pdf"),
    ".docx": ("docx", "docx"),
    ".pptx": ("pptx", "pptx"),
    ".epub": ("epub", "epub"),
    ".odt": ("odt", "odt"),
    ".rtf": ("rtf", "rtf"),
    ".eml": ("mail", "eml"),
    ".msg": ("msg", "msg"),
    ".csv": ("sheet", "csv"),
    ".tsv": ("sheet", "csv"),
    ".xlsx": ("sheet", "xlsx"),
    ".xlsm": ("sheet", "xlsx"),
    ".ipynb": ("notebook", "ipynb"),
    **{suffix: ("code", "code") for suffix in CODE_SUFFIXES},
}
# formats people have that no loader reads: say what to do instead
_HINTS = {".doc": "old binary Word format: save it as .docx", ".xls": "old binary Excel format: save it as .xlsx",
          ".ppt": "old binary PowerPoint format: save it as .pptx"}
# modules of optional extras -> the extra that installs them (anything else missing is a broken install)
_EXTRAS = {"extract_msg": "docs", "rapidocr_onnxruntime": "ocr"}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_LOADERS)
_MAX_REASON = 200


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise UnreadableFile("permission denied") from None
    except FileNotFoundError:
        raise UnreadableFile("file not found") from None
    except IsADirectoryError:
        raise UnreadableFile("is a directory") from None
    except OSError as exc:
        raise UnreadableFile(_one_line(f"cannot read file ({exc.strerror or exc})")) from None


def unsupported_reason(suffix: str) -> str:
    if not suffix:
        return "unsupported type (no file extension)"
    return f"unsupported type {suffix}" + (f" ({_HINTS[suffix]})" if suffix in _HINTS else "")


def load_document(path: Path) -> LoadedDocument:
    """Extract the text of one file; raise UnreadableFile (never anything else) when that gives no text."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        raise UnreadableFile(unsupported_reason(suffix))
    return load_bytes(path.name, _read(path))


def load_bytes(name: str, data: bytes) -> LoadedDocument:
    """Like load_document for bytes that are not a file of their own (an e-mail attachment); `name` gives the
    format by its suffix."""
    suffix = Path(name).suffix.lower()
    if suffix not in _LOADERS:
        raise UnreadableFile(unsupported_reason(suffix))
    module, fmt = _LOADERS[suffix]
    if not data:
        raise UnreadableFile("empty file")
    try:
        loader = importlib.import_module(f".{module}", __name__)
        doc = loader.load(data, suffix)
    except UnreadableFile:
        raise
    except ImportError as exc:  # an environment problem, but still no text from this file
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra:
            raise UnreadableFile(f"{fmt} support is not installed (pip install 'edgerag[{extra}]')") from None
        raise UnreadableFile(f"{fmt} support is not installed (missing module '{exc.name}')") from None
    except MemoryError:
        raise UnreadableFile("too large to load in memory") from None
    except RecursionError:
        raise UnreadableFile(f"corrupt {fmt} (nested too deeply)") from None
    except Exception as exc:  # a parser choking on a malformed file is a bad input, not a crash
        raise UnreadableFile(_one_line(f"corrupt {fmt} ({type(exc).__name__}: {exc})")) from exc
    # drop empty sections here once, whatever the loader did
    doc.sections = [s for s in doc.sections if s.text.strip()]
    if not doc.sections and not doc.attachments:
        raise UnreadableFile("no extractable text")
    return doc
