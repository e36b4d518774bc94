"""The HTTP API and web page: FastAPI over one Recognizer per worker process.

    GET  /              the page (photo upload and webcam), one self-contained HTML file
    POST /v1/predict    an image as multipart (any one file field) or as the raw body -> predict --json's object
    GET  /v1/health     {"status": "ok", ...}
    GET  /v1/model      the model card, the detector and the upload limit
    GET  /openapi.json  the API's OpenAPI description (FastAPI's /docs and /redoc pages are not offered: they
                        load their scripts from a CDN, and are blank offline)

Requests must name this server in their Host header (loopback names, the address it listens on, and any
`--allow-host`), so a web page cannot reach it through DNS rebinding, and a request from a page of another
origin (its Origin header names another host) is refused before it is read.

Uploads are read into memory up to the limit (413 beyond it), decoded with the same code as `emolens predict`
(so decompression bombs are refused: 413), and never touch the disk; a file name sent by a client is only
echoed back as "source". A request's picture is counted against the decoding memory budget from its decode
until its answer (`emolens.data.decode.DECODE_BUDGET`: a small file can decode to hundreds of megabytes, and
requests beyond the budget wait), and detection and classification run under a lock: OpenCV's cascade is not
safe to share between threads, and on a CPU one image at a time per process is also the fastest order.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from emolens import __version__
from emolens.constants import EMOTION_COLORS
from emolens.data.decode import DECODE_BUDGET, ImageTooLarge, UndecodableImage, decoding_bytes
from emolens.predict import DetectorConfig, Recognizer
from emolens.predict.picture import to_gray

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 10.0
# What /docs offers to send to /v1/predict: a multipart file, or the image as the body.
IMAGE_REQUEST_BODY = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"],
        }
    },
    "image/*": {"schema": {"type": "string", "format": "binary"}},
}
# Settings travel to worker processes (uvicorn --workers) as one JSON object in the environment.
SETTINGS_VARIABLE = "EMOLENS_SERVE_SETTINGS"


class _RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    # 503 is "busy": the client may send the same request again shortly.
    return JSONResponse({"error": message}, status_code=status, headers={"Retry-After": "1"} if status == 503 else None)


# Uploads held in memory at once, each up to the upload limit: bodies beyond them are refused with 503 rather
# than buffered, so a hundred clients sending 10 MB each cannot hold a gigabyte between them.
UPLOADS_IN_MEMORY = 8
# A body is held twice at its peak: its chunks and their joined copy (or the multipart parser's copy of the file).
_COPIES_PER_BODY = 2


class UploadBudget:
    """The bytes of request bodies this process holds at once. Used from the event loop's thread only."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.in_use = 0

    def take(self, nbytes: int) -> None:
        """Counts `nbytes` more, or raises a 503 _RequestError if they would go over the budget."""
        if self.in_use + nbytes > self.limit_bytes:
            raise _RequestError(503, "the server is busy with other uploads; send the image again in a moment.")
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
                refusal = _error(
                    400,
                    f"this server does not answer to the host name {name!r}; start it with --allow-host {name or 'NAME'} to allow it.",
                )
            elif origin is not None and urlsplit(origin).netloc.lower() != host.strip().lower():
                refusal = _error(
                    403,
                    f"requests from pages of another origin ({origin}) are refused; send them from this server's own page or without an Origin header.",
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


class _BodyBytes:
    """What one request holds of the upload budget, given back when its answer is sent."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, nbytes: int) -> None:
        self.budget.take(nbytes * _COPIES_PER_BODY)
        self.held += nbytes * _COPIES_PER_BODY

    def give_back(self) -> None:
        self.budget.give_back(self.held)
        self.held = 0


async def _read_capped(request: Request, limit: int, held: _BodyBytes) -> bytes:
    """The request body, refusing (413) more than `limit` bytes whether or not Content-Length says so, and
    (503) bytes the upload budget cannot hold."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _RequestError(413, f"the upload is {int(declared):,} bytes; the limit is {limit:,}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _RequestError(413, f"the upload is over the limit of {limit:,} bytes.")
        held.take(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


class _InMemoryMultiPartParser(MultiPartParser):
    # Starlette spools file parts over 1 MB to a temporary file; uploads are capped anyway, so keep them in memory.
    spool_max_size = 2**63 - 1


async def _image_bytes(request: Request, limit: int, held: _BodyBytes) -> tuple[bytes, str]:
    """The uploaded image's bytes and a name to echo back: one multipart file, or the raw body."""
    body = await _read_capped(request, limit, held)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        if not body:
            raise _RequestError(400, "the request has no image: send one as the body or as a multipart file.")
        return body, "upload"

    async def once() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await _InMemoryMultiPartParser(request.headers, once(), max_files=1, max_fields=16).parse()
    except MultiPartException as error:
        raise _RequestError(400, f"unreadable multipart form ({error.message}); send one image file.") from error
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise _RequestError(400, "the form has no file: send the image as a multipart file field (e.g. 'file').")
        data = await files[0].read()
        # Only the last part of a client's file name is kept, and only to echo it back.
        return data, PurePath(files[0].filename or "upload").name or "upload"
    finally:
        await form.close()


class _OneAtATime:
    """The process's Recognizer answering one upload at a time (its detector and sessions are shared, not
    thread-safe), with the upload's decoding memory reserved for the whole request: pictures waiting for the
    detector count too, and are freed before the reservation ends."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self.lock = threading.Lock()

    def __call__(self, data: bytes, source: str) -> dict[str, Any]:
        with DECODE_BUDGET.reserve(decoding_bytes(data)):
            began = time.perf_counter()
            gray, _ = to_gray(data)  # only the gray picture: nothing is drawn here
            decode_ms = round((time.perf_counter() - began) * 1000, 2)
            with self.lock:
                result = self.recognizer.predict(gray)[0]
            answer = result.replace(source=source, speed={**result.speed, "decode": decode_ms}).to_dict()
            del gray, result
        return answer


async def _predict_response(request: Request, limit: int, recognize: _OneAtATime, uploads: UploadBudget) -> Response:
    """POST /v1/predict: the upload's answer, or the status and one-line error that say what was wrong with it."""
    held = _BodyBytes(uploads)
    try:
        data, source = await _image_bytes(request, limit, held)
        return JSONResponse(await run_in_threadpool(recognize, data, source))
    except ClientDisconnect:
        logger.debug("a client hung up during its upload")
        return Response(status_code=400)
    except _RequestError as error:
        return _error(error.status, str(error))
    except ImageTooLarge as error:
        return _error(413, f"the image is too large to decode ({error}).")
    except UndecodableImage as error:
        return _error(415, f"not an image emolens can read ({error}). Send a JPEG, PNG, WebP, BMP, GIF or TIFF.")
    finally:
        held.give_back()


# How /v1/predict describes itself in the OpenAPI schema (/openapi.json).
PREDICT_ROUTE: dict[str, Any] = {
    "summary": "The faces in an image and their emotions",
    "description": "Send the image as a multipart file field or as the raw request body (any image format Pillow reads). "
    "Returns the same object as `emolens predict --json`.",
    "responses": {
        400: {"description": "no image in the request"},
        413: {"description": "upload or image too large"},
        415: {"description": "not an image"},
        503: {"description": "busy with other uploads: send it again after Retry-After seconds"},
    },
    "openapi_extra": {"requestBody": {"required": True, "content": IMAGE_REQUEST_BODY}},
}


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    # Every error this server gives, 404 and 405 included, reads {"error": "..."}.
    return JSONResponse(
        {"error": str(error.detail)}, status_code=error.status_code, headers=getattr(error, "headers", None)
    )


def create_app(
    model: str = "default",
    *,
    detector: DetectorConfig = DetectorConfig(),
    tta: str = "none",
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    allowed_hosts: Sequence[str] = (),
) -> FastAPI:
    """The emolens web app, with its Recognizer loaded now (once per process).

    Args:
        model: "default" (the bundled ONNX model), a run folder, a .keras or an .onnx file.
        detector: which face detector, and its settings. Defaults to the bundled YuNet.
        tta: "none", "flip" or "crops". Defaults to "none".
        max_upload_mb: largest accepted upload, in megabytes. Defaults to 10.
        allowed_hosts: host names (or addresses) requests may name in their Host header, besides the loopback
            names; "*" allows any. Defaults to none.

    Returns:
        The FastAPI application.
    """
    recognizer = Recognizer(model, detector=detector, tta=tta)
    recognize = _OneAtATime(recognizer)
    limit = int(max_upload_mb * 1_000_000)
    uploads = UploadBudget(UPLOADS_IN_MEMORY * _COPIES_PER_BODY * limit)
    started = time.time()
    page = resources.files("emolens.serve").joinpath("page.html").read_text(encoding="utf-8")
    card = {key: value for key, value in recognizer.classifier.card.items() if key != "training_state"}
    app = FastAPI(
        title="emolens",
        version=__version__,
        description="Facial emotion recognition: the faces in an image and what each shows.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(LocalRequestGuard, allowed_hosts=LOOPBACK_NAMES | set(allowed_hosts))
    app.add_exception_handler(HTTPException, _http_error)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "model": str(model),
            "uptime_s": round(time.time() - started, 1),
        }

    @app.get("/v1/model")
    def model_card() -> dict[str, Any]:
        return {
            "model": str(model),
            "card": card,
            "detector": detector.to_dict(),
            "tta": tta,
            "max_upload_bytes": limit,
            "colors": {name: EMOTION_COLORS.get(name) for name in recognizer.class_names},
        }

    @app.post("/v1/predict", **PREDICT_ROUTE)
    async def predict(request: Request) -> Response:
        return await _predict_response(request, limit, recognize, uploads)

    logger.info("emolens serve: model %s, %s detector, uploads up to %s bytes", model, detector.name, f"{limit:,}")
    return app


def settings_to_environment(model: str, detector: DetectorConfig, **settings: Any) -> dict[str, str]:
    """create_app's arguments as the one environment variable worker processes read them from."""
    return {SETTINGS_VARIABLE: json.dumps({"model": str(model), "detector": detector.to_dict(), **settings})}


def app_from_environment() -> FastAPI:
    """create_app with the settings `emolens serve` put in the environment (uvicorn calls this in each worker)."""
    from emolens.serve import protocol

    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    protocol.request_timeout_s = settings.pop("request_timeout_s", protocol.DEFAULT_REQUEST_TIMEOUT_S)
    return create_app(**{**settings, "detector": DetectorConfig.from_dict(settings["detector"])})
