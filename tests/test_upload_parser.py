"""The upload parser's fast loop reads every file exactly as the plain reading does.

The plain reading (below) looks at every cell of every record and counts lines as it goes;
the parser skips what cannot matter (tests/test_upload_off_loop.py times it). Thousands of
small random files of quotes, line ends, blanks, NULs and IDs must come out the same.
"""

from __future__ import annotations

import csv
import io
import random

from models.csvfile import NUL, PAIRS_FORM, PEOPLE_FORM, as_written, parse_upload, shown

TOKENS = ["1", "22", " ", "\t", ",", ",", ",", '"', '""', "\n", "\n", "\r", "\r\n", NUL, "a", "\u2028", "\x0b", "\u00e9"]
HEADERS = ["From User ID,To User ID", " source user id , TARGET USER ID ,x", '"From User ID","To User ID"', "x,y", ""]
MAX_PAIRS = 3


def plainly(text: str) -> tuple:
    """(row count, pair count, kept rows as (line, from, to, holds a NUL)) or a file-level code."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records, line = [], 1
    for record in reader:
        if any(cell.strip() for cell in record):
            records.append((line, record))
        line = reader.line_num + 1
    form = tuple(cell.strip().lower() for cell in records[0][1][:2]) if records else ()
    if form not in (PEOPLE_FORM, PAIRS_FORM):
        return ("MISSING_COLUMNS",)
    people = form == PEOPLE_FORM
    requests = []
    for line, record in records[1:]:
        first, second = [(record[i].strip() if i < len(record) else "") or None for i in (0, 1)]
        if second is not None or (not people and first is not None):
            requests.append((line, first and shown(first), second and shown(second), NUL in "".join(record)))
    if not requests:
        return ("NO_PAIRS",)
    if len(requests) > MAX_PAIRS:
        return ("TOO_MANY_PAIRS", len(records) - 1, len(requests))
    return (len(records) - 1, len(requests), requests)


def parsed(text: str) -> tuple:
    found = parse_upload(text.encode(), max_bytes=10_000, max_pairs=MAX_PAIRS)
    if found.errors:
        (error,) = found.errors
        counts = (found.row_count, found.pair_count) if error.code == "TOO_MANY_PAIRS" else ()
        return (error.code, *counts)
    rows = [(r.row_number, *as_written(r.source_cell, r.target_cell, found.people_form), bool(r.problems)) for r in found.rows]
    return (found.row_count, found.pair_count, rows)


def test_thousands_of_random_files_read_as_the_plain_reading_reads_them() -> None:
    chance = random.Random(17)
    for _ in range(5000):
        head = chance.choice(["", "\n", " ,\r\n"]) + chance.choice(HEADERS) + chance.choice(["\n", "\r\n", "\r"])
        text = head + "".join(chance.choices(TOKENS, k=chance.randrange(40)))
        assert parsed(text) == plainly(text), repr(text)


def test_a_row_after_a_quoted_cell_of_several_lines_keeps_its_line_number() -> None:
    text = 'From User ID,To User ID,Note\n21,19,"one\r\ntwo\nthree\rfour"\n\n22,20\n'
    assert parsed(text) == (2, 2, [(2, "21", "19", False), (7, "22", "20", False)])
