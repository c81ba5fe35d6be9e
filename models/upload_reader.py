"""Reading an uploaded file in a child process, one file at a time.

Parsing a large file is CPU in C calls that hold the GIL (the csv module reads a
whole record in one call), so even a thread would stall the API's event loop: the
loop only writes the file to the child and reads back the result. One at a time,
so uploads never take every core of a small machine (benchmarks/RESULTS.md,
*Upload validation*).
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
