"""uvicorn's HTTP/1.1 protocol with a deadline for receiving each request.

uvicorn times out idle keep-alive connections, but not a request that arrives slowly: its keep-alive timer
restarts on every byte, so a client trickling its headers or its upload holds a connection (and a buffered
upload's memory) for as long as it likes. ASGI middleware cannot help, since it runs only once the headers are
in. Here each connection gets `request_timeout_s` to deliver a whole request (headers and body) from when it
opens, or from when the previous response ended; the time the server takes to answer is not counted.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT_S = 30.0
# Set by `emolens serve` in each process before connections arrive (worker processes read it from the settings).
request_timeout_s = DEFAULT_REQUEST_TIMEOUT_S


class DeadlineH11Protocol(H11Protocol):
    """H11Protocol that closes a connection whose request is not fully received within `request_timeout_s`."""

    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            logger.info("closed a connection from %s: no whole request within %g s", self.client, request_timeout_s)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        # DONE: the request's last byte is in, and the rest is the server's own time.
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()

    def on_response_complete(self) -> None:
        # The next request on this keep-alive connection gets its own deadline; armed first, because a
        # pipelined request already received is handled (and so disarms it) inside super's call.
        if not self.transport.is_closing():
            self._arm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
