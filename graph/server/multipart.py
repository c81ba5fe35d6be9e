"""The GraphQL multipart request specification (github.com/jaydenseric/graphql-multipart-request-spec), strictly.

The fields come in its order: `operations` (the operations, each file a null), `map`
(each file part's name to the operations paths where it goes) and then the file parts,
each with a unique name. One part may go to several paths; what it does not allow, and
what is refused here with a 400 before anything runs, is any other shape: two files (or
one file twice) at one path, a map naming a part the request lacks, a file part no map
entry names, a path that does not lead to a null placeholder.

The schema takes one Upload, so a request holds at most MAX_FILES file parts and the two
fields, each field at most ALLOWANCE bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from graph.server.refusals import BadRequest

MAX_FILES = 1
FIELDS = ("operations", "map")
# Room for the operations and map fields and the parts' headers, besides the file: a query
# at the 20,000-character limit is 120,000 bytes even if every character is a \u escape.
ALLOWANCE = 256 * 1024

_ORDER = 'A multipart request holds the fields "operations" and then "map", then the file parts.'
_SHAPE = 'The multipart "map" must be an object of lists of paths, e.g. {"0": ["variables.file"]}.'


async def read_form(request: Request) -> FormData:
    """The form, parsed within the counts above (Starlette's parser; its words are not passed on)."""
    try:
        return await request.form(max_files=MAX_FILES, max_fields=len(FIELDS), max_part_size=ALLOWANCE)
    except HTTPException:
        raise BadRequest(
            f"The multipart body could not be read: it must be well formed (RFC 7578) and hold the fields "
            f"operations and map, each at most {ALLOWANCE} bytes, and at most {MAX_FILES} file."
        ) from None


def operations(form: FormData, parse_json: Callable[[str], Any]) -> Any:
    """The operations with each file at its paths, or a 400 saying how the request breaks the specification."""
    items = form.multi_items()
    names = [name for name, _ in items]
    if names[: len(FIELDS)] != list(FIELDS) or not all(isinstance(value, str) for _, value in items[: len(FIELDS)]):
        raise BadRequest(_ORDER)
    files: dict[str, UploadFile] = {}
    for name, value in items[len(FIELDS) :]:
        if not isinstance(value, UploadFile):
            raise BadRequest(_ORDER)
        if name in files:
            raise BadRequest("Two file parts of the multipart request have the same name.")
        files[name] = value
    found = parse_json(items[0][1])
    files_map = _files_map(items[1][1])
    if set(files_map) - set(files):
        raise BadRequest('The multipart "map" names a file part that the request does not hold.')
    if set(files) - set(files_map):
        raise BadRequest('The multipart request holds a file part that its "map" does not name.')
    paths = [path for part_paths in files_map.values() for path in part_paths]
    if len(set(paths)) != len(paths):
        raise BadRequest('The multipart "map" puts two files, or one file twice, at the same path.')
    for name, part_paths in files_map.items():
        for path in part_paths:
            container, key = _placeholder(found, path)
            container[key] = files[name]
    return found


def _files_map(text: str) -> dict[str, list[str]]:
    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) != len(pairs):
            raise BadRequest('The multipart "map" names a file part twice.')
        return dict(pairs)

    try:
        value = json.loads(text, object_pairs_hook=no_repeats)
    except (RecursionError, ValueError):
        raise BadRequest('The multipart "map" is not valid JSON.') from None
    if not (
        isinstance(value, dict)
        and all(isinstance(paths, list) and all(isinstance(p, str) for p in paths) for paths in value.values())
    ):
        raise BadRequest(_SHAPE)
    return value


def _placeholder(found: Any, path: str) -> tuple[Any, Any]:
    """The object or list and the key or index that `path` (object-path's dots) names, holding null."""
    *steps, last = path.split(".")
    container = found
    for step in steps:
        container = container[_key(container, step)]
    key = _key(container, last)
    if container[key] is not None:
        raise BadRequest('A path of the multipart "map" does not lead to a null in "operations".')
    return container, key


def _key(container: Any, step: str) -> Any:
    if isinstance(container, dict) and step in container:
        return step
    if isinstance(container, list) and step.isascii() and step.isdigit() and int(step) < len(container):
        return int(step)
    raise BadRequest('A path of the multipart "map" does not lead to a null in "operations".')
