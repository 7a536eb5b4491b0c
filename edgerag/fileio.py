"""Whole-file writes that a killed process cannot leave half-written.

The text goes to a sibling `<name>.tmp` first and is renamed over the target (atomic on one filesystem), so a
reader sees the old file or the new one, never a prefix. One home for every small JSON/JSONL/Markdown file the
package rewrites: run records, data cards, manifests, the active-model map.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
