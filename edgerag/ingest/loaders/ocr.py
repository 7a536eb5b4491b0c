"""OCR for scanned PDF pages (optional extra `ocr`): rapidocr-onnxruntime on the onnxruntime we already ship.

Why this engine: its wheel carries its models (PP-OCRv4 detection + recognition, 16 MB, Chinese/English
alphabet), so nothing is downloaded at run time, and it runs on onnxruntime. (The newer `rapidocr` 2.x/3.x
package downloads its models on first use, and tesseract needs a system binary.) The cost is its dependencies:
opencv-python, shapely, pyclipper, Pillow (~100 MB installed). Pages are rendered by pypdfium2 at 2x (144 dpi):
bench/parsers.py --ocr measures accuracy and time on a page rendered from a known text layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

RENDER_SCALE = 2.0  # 144 dpi: small print is unreadable at 72, and 3x triples the time for ~no gain


@lru_cache(maxsize=1)
def _engine():
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # it logs to stderr; the library never prints
    return engine


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def lines_in_reading_order(result) -> str:
    """RapidOCR's (box, text, score) detections → text lines, top to bottom, left to right within a line."""
    items = []
    for box, text, _score in result or []:
        ys = [p[1] for p in box]
        items.append((min(ys), max(ys), min(p[0] for p in box), text))
    items.sort()
    lines: list[list[tuple[float, str]]] = []
    bottom = None
    for top, low, left, text in items:
        # same line when this box starts above the middle of the previous line's boxes
        if lines and bottom is not None and top < bottom:
            lines[-1].append((left, text))
        else:
            lines.append([(left, text)])
            bottom = top + (low - top) / 2
    return "\n".join(" ".join(t for _, t in sorted(line)) for line in lines)


def read_page(page) -> str:
    """OCR one pypdfium2 page."""
    image = page.render(scale=RENDER_SCALE).to_numpy()  # BGR(A) byte order, which is what OpenCV expects
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    result, _ = _engine()(image)
    return lines_in_reading_order(result)


def reader() -> Callable | None:
    """read_page when the `ocr` extra is installed, else None (the caller names the extra in its warning)."""
    return read_page if available() else None
