"""A request body read under a size limit, so that an oversized one still gets its 413.

A client that writes its whole body before it reads the answer (Python's urllib, many HTTP
libraries) never sees an answer sent while its body is still arriving: the server closes
a socket with unread data in it, and the kernel resets the connection. So the rest of an
oversized body is read and dropped, up to DRAIN_LIMIT_FACTOR times the limit, before the
413 goes out. A client that waits for `100 Continue` (curl) is answered at once and sends
no body at all."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

DRAIN_LIMIT_FACTOR = 4


class BodyTooLarge(Exception):
    """The body is over the limit. Whatever of it is still unread stays unread, so the
    answer must close the connection."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body; BodyTooLarge as soon as it is known to be over `limit` bytes, by
    its Content-Length or by counting."""
    drain_limit = DRAIN_LIMIT_FACTOR * limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        if int(declared) <= drain_limit and not _waits_for_continue(request):
            await _discard(request.stream(), drain_limit)
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _discard(stream, drain_limit - size)
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _waits_for_continue(request: Request) -> bool:
    """The client sends its body only once told to (`Expect: 100-continue`)."""
    return request.headers.get("expect", "").lower() == "100-continue"


async def _discard(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop the rest of the body, until it ends or more than `budget` bytes were read."""
    try:
        async for chunk in stream:
            budget -= len(chunk)
            if budget < 0:
                return
    except ClientDisconnect:
        pass
