"""The HTTP API and web page: FastAPI over one Recognizer per worker process.

    GET  /              the page (photo upload and webcam), one self-contained HTML file
    POST /v1/predict    an image as multipart (any one file field) or as the raw body -> predict --json's object
    GET  /v1/health     {"status": "ok", ...}
    GET  /v1/model      the model card, the detector and the upload limit
    GET  /openapi.json  the API's OpenAPI description (FastAPI's /docs and /redoc pages are not offered: they
                        load their scripts from a CDN, and are blank offline)

Requests must name this server in their Host header and come from no page of another origin, and uploads are
read into memory up to the limit (413 beyond it): see emolens.serve.guards. Uploads are decoded with the same
code as `emolens predict` (so decompression bombs are refused: 413), and never touch the disk; a file name sent
by a client is only echoed back as "source". A request's picture is counted against the decoding memory budget
from its decode until its answer (`emolens.data.decode.DECODE_BUDGET`: a small file can decode to hundreds of
megabytes, and requests beyond the budget wait), and detection and classification run under a lock: OpenCV's
cascade is not safe to share between threads, and on a CPU one image at a time per process is also the fastest
order.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from emolens import __version__
from emolens.constants import EMOTION_COLORS
from emolens.data.decode import DECODE_BUDGET, ImageTooLarge, UndecodableImage, decoding_bytes
from emolens.predict import DetectorConfig, Recognizer
from emolens.predict.detectors import DEFAULT_DETECTOR_CONFIG
from emolens.predict.picture import to_gray
from emolens.serve.guards import (
    COPIES_PER_BODY,
    LOOPBACK_NAMES,
    UPLOADS_IN_MEMORY,
    BodyBytes,
    LocalRequestGuard,
    RequestError,
    UploadBudget,
    error_response,
    read_image,
)
from emolens.train.state import CARD_KEY as TRAINING_STATE_KEY

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
                [result] = self.recognizer.predict(gray)  # one picture, one Result
            answer = result.replace(source=source, speed={**result.speed, "decode": decode_ms}).to_dict()
            del gray, result
        return answer


async def _predict_response(request: Request, limit: int, recognize: _OneAtATime, uploads: UploadBudget) -> Response:
    """POST /v1/predict: the upload's answer, or the status and one-line error that say what was wrong with it."""
    held = BodyBytes(uploads)
    try:
        data, source = await read_image(request, limit, held)
        return JSONResponse(await run_in_threadpool(recognize, data, source))
    except ClientDisconnect:
        logger.debug("a client hung up during its upload")
        return Response(status_code=400)
    except RequestError as error:
        return error_response(error.status, str(error))
    except ImageTooLarge as error:
        return error_response(413, f"the image is too large to decode ({error}).")
    except UndecodableImage as error:
        return error_response(
            415, f"not an image emolens can read ({error}). Send a JPEG, PNG, WebP, BMP, GIF or TIFF."
        )
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


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    # Every error this server gives, 404 and 405 included, reads {"error": "..."}. Registered for HTTPException
    # alone, though Starlette types every exception handler as taking any Exception.
    assert isinstance(error, HTTPException)
    return JSONResponse(
        {"error": str(error.detail)}, status_code=error.status_code, headers=getattr(error, "headers", None)
    )


def create_app(
    model: str = "default",
    *,
    detector: DetectorConfig = DEFAULT_DETECTOR_CONFIG,
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
    limit = int(max_upload_mb * 1_000_000)
    app = _guarded_app(allowed_hosts)
    _add_page_and_info(app, recognizer, model=model, detector=detector, tta=tta, limit=limit)
    _add_predict(app, recognizer, limit)
    logger.info("emolens serve: model %s, %s detector, uploads up to %s bytes", model, detector.name, f"{limit:,}")
    return app


def _guarded_app(allowed_hosts: Sequence[str]) -> FastAPI:
    """A FastAPI app without routes yet: no /docs or /redoc, requests guarded by LocalRequestGuard (the loopback
    names and `allowed_hosts`), and every HTTP error as JSON."""
    app = FastAPI(
        title="emolens",
        version=__version__,
        description="Facial emotion recognition: the faces in an image and what each shows.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(LocalRequestGuard, allowed_hosts=LOOPBACK_NAMES | set(allowed_hosts))
    app.add_exception_handler(HTTPException, _http_error)
    return app


def _add_page_and_info(
    app: FastAPI, recognizer: Recognizer, *, model: str, detector: DetectorConfig, tta: str, limit: int
) -> None:
    """GET / (the page), GET /v1/health and GET /v1/model (the card without its training state, the settings)."""
    started = time.time()
    page = resources.files("emolens.serve").joinpath("page.html").read_text(encoding="utf-8")
    card = {key: value for key, value in recognizer.classifier.card.items() if key != TRAINING_STATE_KEY}

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


def _add_predict(app: FastAPI, recognizer: Recognizer, limit: int) -> None:
    """POST /v1/predict: uploads of up to `limit` bytes, as many held at once as the upload budget allows,
    answered one at a time by `recognizer`."""
    recognize = _OneAtATime(recognizer)
    uploads = UploadBudget(UPLOADS_IN_MEMORY * COPIES_PER_BODY * limit)

    @app.post("/v1/predict", **PREDICT_ROUTE)
    async def predict(request: Request) -> Response:
        return await _predict_response(request, limit, recognize, uploads)


def settings_to_environment(model: str, detector: DetectorConfig, **settings: Any) -> dict[str, str]:
    """create_app's arguments as the one environment variable worker processes read them from."""
    return {SETTINGS_VARIABLE: json.dumps({"model": str(model), "detector": detector.to_dict(), **settings})}


def app_from_environment() -> FastAPI:
    """create_app with the settings `emolens serve` put in the environment (uvicorn calls this in each worker)."""
    from emolens.serve import protocol

    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    protocol.request_timeout_s = settings.pop("request_timeout_s", protocol.DEFAULT_REQUEST_TIMEOUT_S)
    return create_app(**{**settings, "detector": DetectorConfig.from_dict(settings["detector"])})
