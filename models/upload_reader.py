"""Reading an uploaded file in a child process, one file at a time.

Reading a 20 MB CSV file is seconds of CPU, and much of it is single C calls
that hold the GIL: the csv module reads a whole record in one call, and a line
of ten million commas is one record. On a thread of the API it would still
stall the event loop, so the file goes to a child process of its own: the loop
only writes the file to the child's stdin and reads back the result. One at a
time, so that uploads never take both of a small machine's cores.
"""

from __future__ import annotations

import asyncio
import pickle
import sys

from models.csvfile import ParsedUpload, parse_upload

_one_at_a_time = asyncio.Semaphore(1)


async def read_upload(data: bytes, *, max_bytes: int, max_pairs: int) -> ParsedUpload:
    """`parse_upload` of `data`, run by a child process; the child is killed if the request is."""
    async with _one_at_a_time:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            str(max_bytes),
            str(max_pairs),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            result, failure = await child.communicate(data)
        finally:
            if child.returncode is None:  # cancelled: the answer is not wanted
                child.kill()
                await child.wait()
    if child.returncode != 0:
        raise RuntimeError(f"The upload reader exited with {child.returncode}: {failure.decode(errors='replace')}")
    return pickle.loads(result)  # written by this module's own child, below


def main() -> None:
    """The child: the file on stdin; its ParsedUpload, pickled, on stdout."""
    max_bytes, max_pairs = (int(arg) for arg in sys.argv[1:3])
    parsed = parse_upload(sys.stdin.buffer.read(), max_bytes=max_bytes, max_pairs=max_pairs)
    sys.stdout.buffer.write(pickle.dumps(parsed, pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
