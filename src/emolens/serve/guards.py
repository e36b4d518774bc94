"""What a request must pass before the model sees it: the host and origin it names, and the upload limits.

Requests must name this server in their Host header (loopback names, the address it listens on, and any
`--allow-host`), so a web page cannot reach it through DNS rebinding, and a request from a page of another
origin (its Origin header names another host) is refused before it is read.

An upload is read into memory up to the limit (413 beyond it), counted against the bytes of bodies this process
may hold at once (503 beyond them), and never touches the disk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser


class RequestError(Exception):
    """A request this server refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str) -> JSONResponse:
    """{"error": message} with `status`; 503 is "busy": the client may send the same request again shortly."""
    return JSONResponse({"error": message}, status_code=status, headers={"Retry-After": "1"} if status == 503 else None)


# Uploads held in memory at once, each up to the upload limit: bodies beyond them are refused with 503 rather
# than buffered, so a hundred clients sending 10 MB each cannot hold a gigabyte between them.
UPLOADS_IN_MEMORY = 8
# A body is held twice at its peak: its chunks and their joined copy (or the multipart parser's copy of the file).
COPIES_PER_BODY = 2


class UploadBudget:
    """The bytes of request bodies this process holds at once. Used from the event loop's thread only."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.in_use = 0

    def take(self, nbytes: int) -> None:
        """Counts `nbytes` more, or raises a 503 RequestError if they would go over the budget."""
        if self.in_use + nbytes > self.limit_bytes:
            raise RequestError(503, "the server is busy with other uploads; send the image again in a moment.")
        self.in_use += nbytes

    def give_back(self, nbytes: int) -> None:
        self.in_use -= nbytes


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_name(authority: str) -> str:
    """The host of a Host header or URL authority, without port or brackets: "[::1]:8000" -> "::1"."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


class LocalRequestGuard:
    """ASGI middleware: answers 400 to a Host header that does not name this server, and 403 to a request whose
    Origin is not this server's own, before the app reads anything; every response says nosniff.

    Starlette's TrustedHostMiddleware would do the first, but it cuts IPv6 hosts at their first colon, answers
    in plain text where every error here is JSON, and does not look at Origin.
    """

    def __init__(self, app: Any, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        # Names as the Host header's are compared: "[::1]" or "photos.example:8000" given to --allow-host match too.
        self.allowed_hosts = frozenset(_host_name(name).rstrip(".") for name in allowed_hosts)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {
                key.decode("latin-1"): value.decode("latin-1")
                for key, value in scope["headers"]
                if key in (b"host", b"origin")
            }
            host = headers.get("host", "")
            name = _host_name(host).rstrip(".")
            origin = headers.get("origin")
            refusal = None
            if "*" not in self.allowed_hosts and name not in self.allowed_hosts:
                refusal = error_response(
                    400,
                    f"this server does not answer to the host name {name!r}; start it with --allow-host {name or 'NAME'} to allow it.",
                )
            elif origin is not None and urlsplit(origin).netloc.lower() != host.strip().lower():
                refusal = error_response(
                    403,
                    f"requests from pages of another origin ({origin}) are refused; "
                    "send them from this server's own page or without an Origin header.",
                )
            send = _with_nosniff(send)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _with_nosniff(send: Any) -> Any:
    """`send`, adding X-Content-Type-Options: nosniff to the response: browsers must not take a JSON answer
    (which echoes a client's file name) for HTML or script."""

    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
        await send(message)

    return sending


class BodyBytes:
    """What one request holds of the upload budget, given back when its answer is sent."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, nbytes: int) -> None:
        self.budget.take(nbytes * COPIES_PER_BODY)
        self.held += nbytes * COPIES_PER_BODY

    def give_back(self) -> None:
        self.budget.give_back(self.held)
        self.held = 0


async def _read_capped(request: Request, limit: int, held: BodyBytes) -> bytes:
    """The request body, refusing (413) more than `limit` bytes whether or not Content-Length says so, and
    (503) bytes the upload budget cannot hold."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the upload is {int(declared):,} bytes; the limit is {limit:,}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the upload is over the limit of {limit:,} bytes.")
        held.take(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


class _InMemoryMultiPartParser(MultiPartParser):
    # Starlette spools file parts over 1 MB to a temporary file; uploads are capped anyway, so keep them in memory.
    spool_max_size = 2**63 - 1


async def read_image(request: Request, limit: int, held: BodyBytes) -> tuple[bytes, str]:
    """The uploaded image's bytes and a name to echo back: one multipart file, or the raw body."""
    body = await _read_capped(request, limit, held)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        if not body:
            raise RequestError(400, "the request has no image: send one as the body or as a multipart file.")
        return body, "upload"

    async def once() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await _InMemoryMultiPartParser(request.headers, once(), max_files=1, max_fields=16).parse()
    except MultiPartException as error:
        raise RequestError(400, f"unreadable multipart form ({error.message}); send one image file.") from error
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise RequestError(400, "the form has no file: send the image as a multipart file field (e.g. 'file').")
        data = await files[0].read()
        # Only the last part of a client's file name is kept, and only to echo it back.
        return data, PurePath(files[0].filename or "upload").name or "upload"
    finally:
        await form.close()
