"""Tables as files: .csv/.tsv (stdlib csv) and .xlsx (openpyxl), each sheet one section of one Markdown table.

The sheet name is the section heading, the first row the table header; the chunker keeps rows whole and
repeats the header in every chunk of a long sheet, so a question about a cell finds its row with the column
names. Cell values are read as last computed by the spreadsheet (openpyxl data_only); formulas are not run.
"""

from __future__ import annotations

import csv
import io

from .base import LoadedDocument, Section, UnreadableFile, markdown_table
from .encoding import decode_text

MAX_ROWS = 200_000  # per sheet: a bigger sheet is data for a database, not prose for retrieval


def _csv(data: bytes, suffix: str) -> LoadedDocument:
    text = decode_text(data)
    sample = text[:20_000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters="\t" if suffix == ".tsv" else ",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if suffix == ".tsv" else csv.excel
    rows = []
    for i, row in enumerate(csv.reader(io.StringIO(text), dialect)):
        if i >= MAX_ROWS:
            break
        rows.append(row)
    table = markdown_table(rows)
    return LoadedDocument([Section(table)] if table else [], "csv",
                          warnings=[f"only the first {MAX_ROWS} rows read"] if len(rows) >= MAX_ROWS else [])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx(data: bytes) -> LoadedDocument:
    import zipfile

    from openpyxl import load_workbook

    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise UnreadableFile("password-protected or old binary Excel file (not an .xlsx zip)")
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except zipfile.BadZipFile:
        raise UnreadableFile("corrupt xlsx (not a zip archive)") from None
    sections, warnings = [], []
    try:
        for ws in wb.worksheets:
            rows = []
            for i, row in enumerate(ws.iter_rows(values_only=True)):
                if i >= MAX_ROWS:
                    warnings.append(f"sheet {ws.title}: only the first {MAX_ROWS} rows read")
                    break
                rows.append([_cell(v) for v in row])
            table = markdown_table(rows)
            if table:
                sections.append(Section(table, heading=ws.title))
        title = wb.properties.title if wb.properties else None
    finally:
        wb.close()
    return LoadedDocument(sections, "xlsx", title, warnings)


def load(data: bytes, suffix: str = ".csv") -> LoadedDocument:
    return _xlsx(data) if suffix in (".xlsx", ".xlsm") else _csv(data, suffix)
