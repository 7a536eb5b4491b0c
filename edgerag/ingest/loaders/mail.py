"""E-mail (.eml, RFC 822/MIME) with the standard library's email package; .msg (Outlook) shares the layout.

One section holds the headers people search by (subject, from, to, date), then the body: text/plain where the
mail has it, else its text/html through the HTML walker. Attachments (parts with a file name, attached mails)
are handed back as Attachment objects, and sync ingests each as a document of its own, so a PDF sent by mail is
cited as that PDF with its page numbers.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from .base import Attachment, LoadedDocument, Section, SectionBuilder, UnreadableFile, clean
from .encoding import decode_text
from .html import walk_html

HEADERS = ("subject", "from", "to", "cc", "date")


def header_block(get) -> str:
    lines = []
    for name in HEADERS:
        value = get(name)
        if value:
            lines.append(f"{name.capitalize()}: {' '.join(str(value).split())}")
    return "\n".join(lines)


def body_sections(plain: str | None, html: str | None, heading: str | None) -> list[Section]:
    if plain and plain.strip():
        return [Section(clean(plain), heading=heading)]
    if html and html.strip():
        b = SectionBuilder()
        walk_html(html, b)
        return [Section(s.text, heading=" > ".join(filter(None, (heading, s.heading))) or None) for s in b.done()]
    return []


def _text(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError):
        # an unknown or wrong charset: decode the raw payload ourselves
        return decode_text(part.get_payload(decode=True) or b"")


def _walk(part, attachments: list[Attachment], body: dict[str, str]) -> None:
    """Depth-first: the first text/plain and text/html parts are the body; files and attached mails (digests,
    forwards) are attachments."""
    ctype = part.get_content_type()
    name = part.get_filename()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if isinstance(inner, EmailMessage):
            subject = " ".join(str(inner.get("subject") or "").split())[:80] or "message"
            attachments.append(Attachment(name or f"{subject.replace('/', '_')}.eml", inner.as_bytes()))
        return
    if part.is_multipart():
        for sub in part.iter_parts():
            _walk(sub, attachments, body)
        return
    if part.get_content_maintype() == "image" and part.get("content-id") \
            and part.get_content_disposition() != "attachment":
        return  # an image the HTML body shows inline (logos, signatures), not a document sent along
    if name or part.get_content_disposition() == "attachment":
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            attachments.append(Attachment(name or f"attachment-{len(attachments) + 1}.bin", payload))
        return
    if ctype in ("text/plain", "text/html") and ctype not in body:
        body[ctype] = _text(part)


def load(data: bytes, suffix: str = ".eml") -> LoadedDocument:
    if b"\x00" in data[:4096]:
        data = decode_text(data).encode("utf-8")  # UTF-16 exports of a mail: headers are text too
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if not msg.keys():
        raise UnreadableFile("corrupt eml (no mail headers)")
    if msg.get_content_type() in ("application/pkcs7-mime", "multipart/encrypted"):
        raise UnreadableFile("encrypted e-mail (S/MIME or PGP)")
    attachments: list[Attachment] = []
    body: dict[str, str] = {}
    _walk(msg, attachments, body)
    plain, html = body.get("text/plain"), body.get("text/html")
    subject = " ".join(str(msg.get("subject") or "").split()) or None
    return LoadedDocument(with_headers(header_block(msg.get), body_sections(plain, html, subject), subject), "eml",
                          subject, attachments=attachments)


def with_headers(head: str, body: list[Section], subject: str | None) -> list[Section]:
    """The header lines lead the first body section (a chunk of headers alone would be a poor search hit)."""
    if body and head:
        body[0] = Section(f"{head}\n\n{body[0].text}", body[0].page, body[0].heading)
        return body
    return body or ([Section(head, heading=subject)] if head else [])
