"""Outlook .msg (an OLE compound file) via extract-msg, the maintained reader of the format (optional extra
`docs`: it pulls olefile, RTFDE, compressed-rtf and more). Same layout as .eml: headers + body in one section,
attachments as documents of their own, embedded mails as .eml-like attachments of their own.
"""

from __future__ import annotations

from .base import Attachment, LoadedDocument, UnreadableFile
from .mail import body_sections, header_block, with_headers


def load(data: bytes, suffix: str = ".msg") -> LoadedDocument:
    if not data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise UnreadableFile("corrupt msg (not an Outlook compound file)")
    import extract_msg
    msg = extract_msg.openMsg(data)
    try:
        fields = {"subject": msg.subject, "from": msg.sender, "to": msg.to, "cc": msg.cc, "date": msg.date}
        html = msg.htmlBody
        html = html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html
        subject = " ".join(str(msg.subject or "").split()) or None
        attachments = []
        for att in msg.attachments:
            payload = att.data
            name = att.longFilename or att.shortFilename or f"attachment-{len(attachments) + 1}.bin"
            if isinstance(payload, bytes) and payload:
                attachments.append(Attachment(name, payload))
        sections = with_headers(header_block(fields.get), body_sections(msg.body, html, subject), subject)
    finally:
        msg.close()
    return LoadedDocument(sections, "msg", subject, attachments=attachments)
