"""EPUB: the spine's XHTML documents in reading order, each through the HTML walker, so chapter headings
(h1-h6) give heading paths that run across files. ebooklib reads the container and OPF."""

from __future__ import annotations

import io
import warnings

from .base import LoadedDocument, SectionBuilder, UnreadableFile
from .html import decode_html, walk_html


def load(data: bytes, suffix: str = "") -> LoadedDocument:
    import ebooklib
    from ebooklib import epub

    with warnings.catch_warnings():  # ebooklib warns about its own option defaults; never print
        warnings.simplefilter("ignore")
        try:
            book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
        except epub.EpubException as exc:
            raise UnreadableFile(f"corrupt epub ({getattr(exc, 'msg', None) or exc})") from None
    b = SectionBuilder()
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is not None and item.get_type() == ebooklib.ITEM_DOCUMENT:
            walk_html(decode_html(item.get_content()), b)
    titles = book.get_metadata("DC", "title")
    title = (titles[0][0] or "").strip() if titles else ""
    return LoadedDocument(b.done(), "epub", title or b.first_heading)
