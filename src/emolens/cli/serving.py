"""The `emolens serve` subcommand: the HTTP API and web page (emolens.serve)."""

from __future__ import annotations

import argparse

from emolens.cli._common import (
    _add_detector_flags,
    _add_model_flag,
    _add_tta_flag,
    _command,
    _detector_config,
    _port,
    _positive_int,
)


def cmd_serve(args: argparse.Namespace) -> int:
    """An HTTP API and a web page (photos and the webcam) on this machine.

    Serve POST /v1/predict, /v1/health, /v1/model, the page at / and the OpenAPI description at /openapi.json.
    """
    from emolens.serve import serve

    serve(
        args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        detector=_detector_config(args),
        tta=args.tta,
        max_upload_mb=args.max_upload_mb,
        allowed_hosts=args.allow_host,
        request_timeout_s=args.request_timeout,
        max_connections=args.max_connections,
    )
    return 0


def add_commands(commands) -> None:
    """Adds `emolens serve`: the model, the address, and the limits each worker keeps."""
    from emolens.serve import DEFAULT_MAX_CONNECTIONS

    serve = _command(commands, "serve", cmd_serve, needs_backend=False)
    _add_model_flag(serve)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every network)",
    )
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=_positive_int, default=1, help="worker processes, each with its own model (default 1)"
    )
    serve.add_argument(
        "--max-upload-mb",
        type=float,
        default=10.0,
        help="largest upload in megabytes; larger ones get 413 (default 10)",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name or address clients may reach this server by (repeatable; * for any). "
        "Loopback names and the --host address always work",
    )
    serve.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds a client has to send each whole request, upload included (default 30)",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections each worker keeps open at once; more are answered 503 (default {DEFAULT_MAX_CONNECTIONS})",
    )
    _add_detector_flags(serve)
    _add_tta_flag(serve)
