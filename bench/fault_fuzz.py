"""Fault suite, part 1: ingest fuzzing (see faults.py). Every file tried on its own in a child process that is
restarted when it dies and killed by a watchdog when it stops answering, so a crash or a stall is named and
counted instead of ending the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from faults import DATA, REPO, ingest, integrity


# -- 1. ingest fuzzing ---------------------------------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes | tuple[int, bytes]]) -> Path:
    """A zip; a member given as (n, byte) is n copies of that byte, streamed (so a bomb needs no memory)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            if isinstance(content, tuple):
                n, byte = content
                with zf.open(name, "w", force_zip64=True) as fh:
                    block = byte * (1 << 20)
                    for _ in range(n >> 20):
                        fh.write(block)
            else:
                zf.writestr(name, content)
    return path


def _truncated(source: Path, target: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def hostile_files(folder: Path, big_mb: int = 50, bomb_mb: int = 300) -> Path:
    """Files built to break a parser, a reader or a walker. Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    docs = DATA / "documents"
    pdf = next(docs.rglob("*.pdf"))
    docx = next(docs.rglob("*.docx"))
    epub = next(docs.rglob("*.epub"))
    _truncated(pdf, folder / "truncated.pdf")
    _truncated(pdf, folder / "truncated-early.pdf", 0.05)
    _truncated(docx, folder / "truncated.docx")
    _truncated(epub, folder / "truncated.epub")
    _zip(folder / "bomb.docx", {"[Content_Types].xml": b"<Types/>", "word/document.xml": (bomb_mb << 20, b" ")})
    _zip(folder / "bomb.epub", {
        "mimetype": b"application/epub+zip",
        "META-INF/container.xml": b'<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
                                  b'opendocument:xmlns:container"><rootfiles><rootfile full-path="content.opf" '
                                  b'media-type="application/oebps-package+xml"/></rootfiles></container>',
        "content.opf": b'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
                       b'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier '
                       b'id="id">bomb</dc:identifier><dc:title>Bomb</dc:title><dc:language>en</dc:language></metadata>'
                       b'<manifest><item id="c1" href="ch1.xhtml" media-type="application/xhtml+xml"/></manifest>'
                       b'<spine><itemref idref="c1"/></spine></package>',
        "ch1.xhtml": (bomb_mb << 20, b"a")})
    _zip(folder / "bomb.pptx", {"ppt/slides/slide1.xml": (bomb_mb << 20, b"<")})
    with open(folder / "one-line.txt", "wb") as fh:  # a single 50 MB line: no sentence or paragraph break
        word = b"lorem ipsum dolor sit amet "
        fh.write(word * ((big_mb << 20) // len(word)))
    (folder / "invalid-utf8.txt").write_bytes(b"Valid start. " + bytes(range(128, 256)) * 40 + b" valid end.\xff\xfe")
    (folder / "invalid-utf8.md").write_bytes(b"# Title\n\n\xc3\x28 broken \xe2\x82 sequences \xf0\x28\x8c\x28 here.\n")
    (folder / "nul-bytes.txt").write_bytes(b"text with \x00 nul \x00 bytes in it. " * 50)
    (folder / "deep.html").write_text("<html><body>" + "<div>" * 200_000 + "deep text" + "</div>" * 200_000
                                      + "</body></html>")
    (folder / "deep-unclosed.html").write_text("<p><b><i><span>" * 50_000 + "never closed")
    (folder / "utf16.html").write_bytes("<html><body><h1>Titel</h1><p>Grüße aus Köln.</p></body></html>"
                                        .encode("utf-16"))
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "binary.txt").write_bytes(os.urandom(4096))
    (folder / "fake.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2048))
    (folder / "fake.docx").write_bytes(b"PK\x03\x04" + os.urandom(2048))
    (folder / "crlf.md").write_bytes(b"# Heading\r\n\r\nLine one.\r\nLine two.\r\n" * 100)
    (folder / "no-text.html").write_text("<html><head><script>var x = 1;</script></head><body></body></html>")
    unreadable = folder / "unreadable.txt"
    unreadable.write_text("you should not be able to read this")
    unreadable.chmod(0)
    sub = folder / "links"
    sub.mkdir(exist_ok=True)
    for name, target in (("loop", ".."), ("self-loop", "self-loop"), ("self.txt", "self.txt"),
                         ("dangling.txt", "no-such-file.txt"), ("to-parent", "../links")):
        link = sub / name
        if not link.is_symlink():
            link.symlink_to(target)
    if hasattr(os, "mkfifo") and not (folder / "pipe.txt").exists():
        os.mkfifo(folder / "pipe.txt")  # reading it would block forever
    return folder


def fuzz_child(args) -> int:
    """Ingest each listed file on its own (one JSON line per file), then the folders whole."""
    items = json.loads(Path(args.files).read_text())
    root = Path(args.root)
    for item in items:
        print(json.dumps({"start": item}), flush=True)
        started = time.perf_counter()
        try:
            report = ingest(root, [Path(item)], time_limit=args.limit)
            outcomes = [{"path": o.path, "status": o.status, "reason": o.reason} for o in report.outcomes]
            print(json.dumps({"path": item, "outcomes": outcomes, "seconds": time.perf_counter() - started}),
                  flush=True)
        except Exception as exc:  # noqa: BLE001 - exactly what the suite counts
            print(json.dumps({"path": item, "crash": f"{type(exc).__name__}: {exc}"[:300],
                              "seconds": time.perf_counter() - started}), flush=True)
    print(json.dumps({"integrity": integrity(root)}), flush=True)
    return 0


def fuzz(work: Path, paths: list[Path], limit: float = 30.0, watchdog: float | None = None,
         walk: list[Path] | None = None) -> dict:
    """Every file under paths on its own, then each folder in `walk` (default: the folders in paths) as a whole,
    which walks its links, loops, unreadable entries and named pipes. A child
    process does the work: a crash of the interpreter is caught and named too, and a file that outlives the time
    limit by far is killed by the watchdog (counted as a stall)."""
    from edgerag.ingest.sync import discover

    work.mkdir(parents=True, exist_ok=True)
    files = [str(f) for p in paths for f in ([p] if p.is_file() else sorted(x for x in p.rglob("*")
                                                                             if x.is_file() and not x.is_symlink()))]
    walk = [p for p in paths if p.is_dir()] if walk is None else walk
    todo = files + [str(p) for p in walk]
    discover(walk)  # a walker that loops forever would stop the suite here
    results: list[dict] = []
    watchdog = watchdog or limit * 3 + 30
    root = work / "data"
    root.mkdir(exist_ok=True)
    integrity_problems: list[str] | None = None
    while todo:
        listing = work / "todo.json"
        listing.write_text(json.dumps(todo))
        cmd = [sys.executable, str(Path(__file__).resolve().with_name("faults.py")), "fuzz-child", "--files",
               str(listing), "--root", str(root), "--limit", str(limit)]
        if os.geteuid() == 0 and shutil.which("setpriv"):  # root reads everything: drop the override so a
            cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] + cmd  # 000 file is unreadable
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        current, done = None, set()
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if not sel.select(timeout=watchdog):
                proc.kill()
                results.append({"path": current, "stall": f"no answer in {watchdog:.0f}s"})
                done.add(current)
                break
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "start" in msg:
                current = msg["start"]
            elif "integrity" in msg:
                integrity_problems = msg["integrity"]
            else:
                results.append(msg)
                done.add(msg["path"])
        proc.wait()
        if proc.returncode not in (0, None) and current and current not in done:
            results.append({"path": current, "crash": f"interpreter died (exit {proc.returncode})"})
            done.add(current)
        if current is None:  # died before its first file: it would die again, so stop and say so
            results.append({"path": "(fuzz child)", "crash": f"child died at start (exit {proc.returncode})"})
            break
        todo = [t for t in todo if t not in done]
        if integrity_problems is not None:
            break
    outcomes = [o for r in results for o in r.get("outcomes", [])]
    failed = [o for o in outcomes if o["status"] in ("failed", "unsupported")]
    return {
        "files_tried": len(files), "folder_runs": len(walk),
        "crashes": [r for r in results if "crash" in r], "stalls": [r for r in results if "stall" in r],
        "named_failures": sum(1 for o in failed if o["reason"]), "unnamed_failures": sum(1 for o in failed if not o["reason"]),
        "ingested": sum(1 for o in outcomes if o["status"] in ("added", "updated", "unchanged", "renamed")),
        "time_limited": sum(1 for o in failed if "file_time_limit" in o["reason"]),
        "slowest_s": round(max((r.get("seconds", 0) for r in results), default=0), 1),
        "integrity": integrity_problems if integrity_problems is not None else ["no integrity check (child died)"],
        "failures": sorted({(Path(o["path"]).name, o["reason"]) for r in results for o in r.get("outcomes", [])
                            if o["status"] == "failed"}),
    }
