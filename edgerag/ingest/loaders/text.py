"""Plain text (.txt, and light-markup text such as .rst/.org that reads fine as is): one section, no headings."""

from __future__ import annotations

from .base import LoadedDocument, Section, UnreadableFile, clean
from .encoding import decode_text


def load(data: bytes, suffix: str = ".txt") -> LoadedDocument:
    try:
        text = clean(decode_text(data))
    except UnreadableFile as exc:
        # name the extension: "binary content in a .txt file" tells the user the file is misnamed
        raise UnreadableFile(f"{exc} in a {suffix} file") from None
    return LoadedDocument([Section(text)] if text else [], "txt")
