"""CSV in and out: the people file, the upload parser, and safe cells.

The upload parser only reads; it knows the two header forms and the
direction rule of SPEC.md 6.2, and hands (source, target) cells with their
line numbers to the rules.
"""

from __future__ import annotations

import csv
import io
import re
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
_FORMULA_STARTS = frozenset("=+-@\t\r")


def neutralise(value: object) -> str:
    """A cell a spreadsheet will show as text, never run as a formula (OWASP's advice)."""
    text = value if type(value) is str else "" if value is None else str(value)
    return "'" + text if text[:1] in _FORMULA_STARTS else text


# Where a cell that starts like a formula shows in CSV text: after a comma or a line's start, plain
# or quoted (a cell starting with CR is always quoted). A CR that ends a line never matches, and a
# false match only costs the slow path.
_FORMULA_CELL = re.compile(r'[,\n]"?[=+\-@\t]|[,\n]"\r')


def write_rows(rows: Iterable[Iterable[object]]) -> str:
    """CSV text for `rows`, every cell neutralised, CRLF line ends (RFC 4180).

    Written as they are first: when no cell of the text starts like a formula, neutralising
    changes nothing (it writes None as "" and other values with str(), as the csv module does),
    which spares a call per cell for 100,000 rows. Otherwise written again, cell by cell.
    """
    rows = list(rows)
    text = _csv(rows)
    if _FORMULA_CELL.search("\n" + text) is None:  # the first line starts after a "\n" too
        return text
    return _csv([neutralise(cell) for cell in row] for row in rows)


def _csv(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
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
