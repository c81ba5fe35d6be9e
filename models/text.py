"""Text the database can store: what every string that enters (an argument, a CSV cell) must be.

PostgreSQL's text holds no NUL character, and no encoding holds a lone UTF-16 surrogate (a
JSON body may still spell one, `"\\ud800"`); SQLite would store both, so the rule is checked
where text enters, the same on both databases, with one code.
"""

from __future__ import annotations

INVALID_TEXT = "INVALID_TEXT"


def storable(text: str) -> bool:
    """No NUL and no lone surrogate: text both databases store as it was given."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
