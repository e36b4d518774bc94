"""`emolens serve`: the HTTP API and web page (see emolens.serve.app)."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from emolens.errors import EmolensError
from emolens.predict.detectors import DetectorConfig

if TYPE_CHECKING:
    import asyncio

    from fastapi import FastAPI

logger = logging.getLogger(__name__)

# Open connections one process serves at once; more are answered 503 and closed. Each idle connection costs
# little (uvicorn stops reading a body it has not been asked for beyond 64 KB), but not nothing.
DEFAULT_MAX_CONNECTIONS = 64


def serve(
    model: str = "default",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    detector: DetectorConfig | None = None,
    tta: str = "none",
    max_upload_mb: float = 10.0,
    allowed_hosts: Sequence[str] = (),
    request_timeout_s: float = 30.0,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Serves the API and page with uvicorn until interrupted; each worker process loads the model once.

    Binds to 127.0.0.1 (this machine only) unless `host` says otherwise. Requests must name a loopback name,
    the address listened on, or one of `allowed_hosts` in their Host header (see emolens.serve.guards), and
    arrive whole within `request_timeout_s` (see emolens.serve.protocol). Each worker keeps at most
    `max_connections` connections open.

    Examples:
        >>> serve("default", port=8000)   # doctest: +SKIP
    """
    from emolens.serve.app import create_app

    _check_numbers(
        workers=workers,
        max_upload_mb=max_upload_mb,
        max_connections=max_connections,
        port=port,
        request_timeout_s=request_timeout_s,
    )
    # The address listened on is a name clients may use; a wildcard address is not one.
    names = [*allowed_hosts, *([] if _is_wildcard(host) else [host])]
    settings: dict[str, Any] = {
        "model": model,
        "detector": detector or DetectorConfig(),
        "tta": tta,
        "max_upload_mb": max_upload_mb,
        "allowed_hosts": names,
    }
    _check_port_free(host, port)
    # Load once here first, so a bad model or detector is a one-line error before any worker starts.
    app = create_app(**settings)
    _announce(host, port, allowed_hosts)
    _run(
        app,
        settings,
        host=host,
        port=port,
        workers=workers,
        request_timeout_s=request_timeout_s,
        max_connections=max_connections,
    )


def _check_numbers(
    *, workers: int, max_upload_mb: float, max_connections: int, port: int, request_timeout_s: float
) -> None:
    """serve's counts, sizes and times, each refused in a one-line error that names it when out of range."""
    if workers < 1:
        raise EmolensError(f"workers must be at least 1 (received {workers}).")
    if not (math.isfinite(max_upload_mb) and max_upload_mb > 0):
        raise EmolensError(f"max_upload_mb must be a positive number of megabytes (received {max_upload_mb}).")
    if max_connections < 1:
        raise EmolensError(f"max_connections must be at least 1 (received {max_connections}).")
    if not 0 <= port <= 65535:
        raise EmolensError(f"port must be between 0 and 65535 (received {port}).")
    if not (math.isfinite(request_timeout_s) and request_timeout_s > 0):
        raise EmolensError(f"request_timeout_s must be a positive number of seconds (received {request_timeout_s}).")


def _announce(host: str, port: int, allowed_hosts: Sequence[str]) -> None:
    """Logs where the server listens, with a warning when other machines can reach it."""
    if _is_public(host):
        hint = "" if allowed_hosts else " They must name it by an address or name given with --allow-host."
        logger.warning(
            "Listening on %s: other machines can reach this server. Use --host 127.0.0.1 to keep it local.%s",
            host,
            hint,
        )
    shown = f"[{host}]" if ":" in host else host
    logger.info(
        "emolens serves on http://%s:%d (the page at /, the API at /v1, its description at /openapi.json); Ctrl-C stops.",
        shown,
        port,
    )


class _ServerOptions(TypedDict):
    """The uvicorn.run keywords one process and worker processes alike are started with."""

    host: str
    port: int
    log_level: str
    http: type[asyncio.Protocol]
    limit_concurrency: int


def _run(
    app: FastAPI,
    settings: dict[str, Any],
    *,
    host: str,
    port: int,
    workers: int,
    request_timeout_s: float,
    max_connections: int,
) -> None:
    """Serves `app` with uvicorn in this process or, with several workers, a copy made from `settings` in each."""
    import uvicorn

    from emolens.serve import protocol
    from emolens.serve.app import settings_to_environment

    protocol.request_timeout_s = request_timeout_s
    # uvicorn refuses a request once the open connections, its own included, reach limit_concurrency.
    server_options: _ServerOptions = {
        "host": host,
        "port": port,
        "log_level": "info",
        "http": protocol.DeadlineH11Protocol,
        "limit_concurrency": max_connections + 1,
    }
    if workers == 1:
        uvicorn.run(app, **server_options)
        return
    os.environ.update(settings_to_environment(**settings, request_timeout_s=request_timeout_s))
    uvicorn.run("emolens.serve.app:app_from_environment", factory=True, workers=workers, **server_options)


def _check_port_free(host: str, port: int) -> None:
    """A one-line error now, rather than uvicorn's log and exit later, when the address cannot be listened on."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            pass
    except OSError as error:
        raise EmolensError(
            f"cannot listen on {host}:{port} ({error.strerror or error}). Choose another port, or stop what uses it."
        ) from error


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _is_public(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


__all__ = ["serve"]
