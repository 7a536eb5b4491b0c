"""Jupyter notebooks (.ipynb, plain JSON: nbformat would only add schema validation we do not need).

Markdown cells and code cells, in order, become one Markdown document (code cells fenced in the kernel's
language), which the Markdown loader turns into sections with heading paths. Outputs are left out: they are
mostly numbers, images and logs, and re-running the notebook would change them.
"""

from __future__ import annotations

import json

from .base import LoadedDocument, UnreadableFile
from .encoding import decode_text
from .markdown import load as load_markdown


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def load(data: bytes, suffix: str = ".ipynb") -> LoadedDocument:
    try:
        nb = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"corrupt ipynb (invalid JSON at line {exc.lineno})") from None
    if not isinstance(nb, dict):
        raise UnreadableFile("corrupt ipynb (not a notebook object)")
    cells = nb.get("cells")
    if cells is None:  # nbformat 3 kept cells inside worksheets
        cells = [c for ws in nb.get("worksheets", []) for c in ws.get("cells", [])]
    meta = nb.get("metadata") or {}
    lang = ((meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name") or "")
    parts = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        text = _source(cell).strip("\n")
        if not text.strip():
            continue
        if cell.get("cell_type") == "markdown":
            parts.append(text)
        elif cell.get("cell_type") == "code":
            fence = "````" if "```" in text else "```"
            parts.append(f"{fence}{lang}\n{text}\n{fence}")
    doc = load_markdown("\n\n".join(parts).encode("utf-8"))
    doc.format = "ipynb"
    return doc
