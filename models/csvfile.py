"""CSV in and out: the people file, the upload parser, and safe cells.

The upload parser only reads; it knows the two header forms and the
direction rule of SPEC.md 6.2, and hands (source, target) cells with their
line numbers to the rules.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from models.rules import Problem

PEOPLE_HEADER = [
    "From User ID",
    "To User ID",
    "First Name",
    "Last Name",
    "Username",
    "Email",
    "Status",
    "Tenant Admin",
    "Teams",
]
PEOPLE_FORM = ("from user id", "to user id")
PAIRS_FORM = ("source user id", "target user id")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """A cell a spreadsheet will show as text, never run as a formula (OWASP's advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def write_rows(rows: Iterable[Iterable[object]]) -> str:
    """CSV text for `rows`, every cell neutralised, CRLF line ends (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()


@dataclass(frozen=True)
class UploadRow:
    row_number: int  # 1-based line in the file; the header is line 1
    from_cell: str | None  # the first two cells, as written
    to_cell: str | None


@dataclass
class ParsedUpload:
    row_count: int = 0
    rows: list[UploadRow] = field(default_factory=list)  # the rows that request a transfer
    errors: list[Problem] = field(default_factory=list)  # file-level
    people_form: bool = True


def source_and_target(first: str | None, second: str | None, people_form: bool) -> tuple[str | None, str | None]:
    """The direction rule of SPEC.md 6.2, in one place.

    In the people file a row stands for its From user, who *receives* the data
    of the user named in To: so the To cell is the source and the From cell the
    target. The "Source User ID, Target User ID" form means what it says.
    """
    return (second, first) if people_form else (first, second)


def _cell(row: list[str], index: int) -> str | None:
    value = row[index].strip() if index < len(row) else ""
    return value or None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of each non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    for record in reader:
        if any(cell.strip() for cell in record):
            yield line, record
        line = reader.line_num + 1


def parse_upload(data: bytes, *, max_bytes: int, max_pairs: int) -> ParsedUpload:
    """Read an uploaded file; file-level problems stop the reading where they must."""
    parsed = ParsedUpload()
    if len(data) > max_bytes:
        parsed.errors.append(
            Problem("FILE_TOO_LARGE", f"The file is larger than the limit of {max_bytes:,} bytes.")
        )
        return parsed
    try:
        text = data.decode("utf-8-sig")
        records = list(_records(text))
    except (UnicodeDecodeError, csv.Error) as exc:
        parsed.errors.append(Problem("INVALID_FILE", f"The file is not a UTF-8 CSV file: {exc}."))
        return parsed
    if not records:
        parsed.errors.append(_missing_columns())
        return parsed
    header = tuple(c.strip().lower() for c in records[0][1][:2])
    if header not in (PEOPLE_FORM, PAIRS_FORM):
        parsed.errors.append(_missing_columns())
        return parsed
    parsed.people_form = people = header == PEOPLE_FORM
    for line, record in records[1:]:
        parsed.row_count += 1
        first, second = _cell(record, 0), _cell(record, 1)
        requests = second is not None if people else (first is not None or second is not None)
        if requests:
            parsed.rows.append(UploadRow(line, first, second))
    if not parsed.rows:
        parsed.errors.append(Problem("NO_PAIRS", "No row requests a transfer: fill in at least one To User ID."))
    elif len(parsed.rows) > max_pairs:
        parsed.errors.append(
            Problem(
                "TOO_MANY_PAIRS",
                f"{len(parsed.rows):,} rows request a transfer; at most {max_pairs:,} are allowed at once.",
            )
        )
    return parsed


def _missing_columns() -> Problem:
    return Problem(
        "MISSING_COLUMNS",
        "The first two columns must be 'From User ID, To User ID' (the people file) "
        "or 'Source User ID, Target User ID'.",
    )
