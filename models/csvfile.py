"""CSV in and out: the people file, the upload parser, and safe cells.

The upload parser only reads; it knows the two header forms and the
direction rule of SPEC.md 6.2, and hands (source, target) cells with their
line numbers to the rules.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from models.problems import Problem
from models.text import INVALID_TEXT

if TYPE_CHECKING:
    from _csv import _reader

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


NUL = "\x00"  # the one character UTF-8 text can hold that a database cannot (models/text.py)
FILE_ROW_CODES = frozenset({INVALID_TEXT})  # a row's problems that come from the file: no re-check clears them


def shown(cell: str) -> str:
    """A cell as it can be stored and shown: a NUL becomes U+FFFD, the replacement character."""
    return cell.replace(NUL, "\ufffd")


@dataclass(frozen=True)
class UploadRow:
    row_number: int  # 1-based line the row starts on; the header is line 1
    source_cell: str | None  # the cell naming the user whose data moves, as written (a NUL shown as U+FFFD)
    target_cell: str | None  # the cell naming the user who receives it
    problems: tuple[Problem, ...] = ()  # the file's own: a cell holding a NUL


@dataclass
class ParsedUpload:
    row_count: int = 0  # the non-blank rows after the header
    pair_count: int = 0  # those that request a transfer
    rows: list[UploadRow] = field(default_factory=list)  # the rows that request a transfer, up to the limit
    errors: list[Problem] = field(default_factory=list)  # file-level
    people_form: bool = True


T = TypeVar("T")


def source_and_target(first: T, second: T, people_form: bool) -> tuple[T, T]:
    """The direction rule of SPEC.md 6.2, in one place.

    In the people file a row stands for its From user, who *receives* the data
    of the user named in To: so the To cell is the source and the From cell the
    target. The "Source User ID, Target User ID" form means what it says.
    """
    return (second, first) if people_form else (first, second)


def as_written(source: T, target: T, people_form: bool) -> tuple[T, T]:
    """A row's first and second cells (From and To, or Source and Target), given its source and target."""
    return source_and_target(source, target, people_form)  # the rule swaps or keeps: its own inverse


def parse_upload(data: bytes, *, max_bytes: int, max_pairs: int) -> ParsedUpload:
    """Read an uploaded file; file-level problems stop the reading where they must.

    Seconds of CPU for a 20 MB file, much of it inside single C calls: run it in a
    process of its own (models/upload_reader.py), never on the event loop.
    """
    if len(data) > max_bytes:
        return _refused("FILE_TOO_LARGE", f"The file is larger than the limit of {max_bytes:,} bytes.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _refused(
            "INVALID_FILE",
            f"The file is not UTF-8 text: line {_line_at(exc.object, exc.start)} holds a byte that is not UTF-8. "
            "Save it as CSV UTF-8 and upload it again.",
        )
    # Without its last line ends, which end no row: a quoted cell left open at the end of the
    # file would take them in, and a row's line is counted back from its last by its cells' breaks.
    reader = csv.reader(io.StringIO(text.rstrip("\r\n"), newline=""))
    parsed = ParsedUpload()
    try:
        header = next((record for record in reader if not _blank(record)), [])
        form = tuple(cell.strip().lower() for cell in header[:2])
        if form not in (PEOPLE_FORM, PAIRS_FORM):
            return _refused("MISSING_COLUMNS", _MISSING_COLUMNS)
        parsed.people_form = form == PEOPLE_FORM
        _read_rows(reader, parsed, max_pairs, NUL in text)
    except csv.Error:  # the only one the reader raises here: a cell past csv.field_size_limit()
        return _refused(
            "INVALID_FILE",
            f"The file is not a CSV file this service reads: line {reader.line_num} holds a cell "
            f"of more than {csv.field_size_limit():,} characters.",
        )
    if not parsed.pair_count:
        parsed.errors.append(Problem("NO_PAIRS", "No row requests a transfer: fill in at least one To User ID."))
    elif parsed.pair_count > max_pairs:
        parsed.errors.append(
            Problem(
                "TOO_MANY_PAIRS",
                f"{parsed.pair_count:,} rows request a transfer; at most {max_pairs:,} are allowed at once.",
            )
        )
    return parsed


def _read_rows(reader: _reader, parsed: ParsedUpload, max_pairs: int, nul: bool) -> None:
    """Count the rows and keep those that request a transfer (up to `max_pairs` of them).

    The loop a 20 MB file of short rows spends its time in, so it does the least per row:
    rows of empty cells never reach it, the first two cells decide almost every row, the others
    are looked at only when both are blank (is the row blank?), and the work of a kept
    row (its first line, its NULs) is done for those alone. `nul`: whether the file holds
    a NUL at all.
    """
    people = parsed.people_form
    rows = parsed.rows
    row_count = pair_count = 0
    for record in filter(any, reader):  # not an empty line, nor a row of empty cells only
        first = record[0].strip()
        if len(record) > 1:
            second = record[1].strip()
            if not (first or second) and (len(record) == 2 or not "".join(record).strip()):
                continue  # a blank row: only spaces and commas
        elif first:
            second = ""
        else:
            continue
        row_count += 1
        if second or (first and not people):
            pair_count += 1
            if pair_count <= max_pairs:
                rows.append(_row(reader.line_num, record, first or None, second or None, people, nul))
    parsed.row_count, parsed.pair_count = row_count, pair_count


def _row(last_line: int, record: list[str], first: str | None, second: str | None, people: bool, nul: bool) -> UploadRow:
    """A kept row; it starts on its last line less the line breaks inside its quoted cells."""
    joined = ",".join(record)
    line = last_line - (joined.count("\n") + joined.count("\r") - joined.count("\r\n"))
    source, target = source_and_target(first, second, people)
    if not (nul and NUL in joined):
        return UploadRow(line, source, target)
    return UploadRow(line, source and shown(source), target and shown(target), _nul_problems(record, people))


def _nul_problems(record: list[str], people: bool) -> tuple[Problem, ...]:
    """INVALID_TEXT for each ID cell holding a NUL, and one for the first other cell that does."""
    problems = []
    source, target = source_and_target(0, 1, people)
    for index, role in ((source, "source"), (target, "target")):
        if index < len(record) and NUL in record[index]:
            problems.append(Problem(INVALID_TEXT, f"{role.capitalize()} user ID holds {_NUL_TEXT}", role))
    other = next((column for column, cell in enumerate(record[2:], 3) if NUL in cell), None)
    if other is not None:
        problems.append(Problem(INVALID_TEXT, f"Column {other} holds {_NUL_TEXT}"))
    return tuple(problems)


_NUL_TEXT = "a NUL character (a zero byte), which is not text."


def _blank(record: list[str]) -> bool:
    return not "".join(record).strip()


def _line_at(data: bytes, offset: int) -> int:
    """The line of the byte at `offset`, counting line ends as the CSV reader does (LF, CRLF, CR)."""
    return data.count(b"\n", 0, offset) + data.count(b"\r", 0, offset) - data.count(b"\r\n", 0, offset) + 1


def _refused(code: str, message: str) -> ParsedUpload:
    return ParsedUpload(errors=[Problem(code, message)])


_MISSING_COLUMNS = (
    "The first two columns must be 'From User ID, To User ID' (the people file) "
    "or 'Source User ID, Target User ID'."
)
