"""The server's defences against abuse, in front of the routes.

* `HostCheck`: the ``Host`` header must name this server (``--allowed-hosts``),
  so that a web page cannot reach a server on loopback by DNS rebinding;
* `BodyLimit`: a request body over ``--max-body`` is refused (413) before
  it is read whole;
* `header_timeout_protocol`: a client has ``--header-timeout`` seconds to
  send a request's headers (slowloris).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import APIError
from .limits import LOOPBACK_HOSTS


class HostCheck:
    """Refuses a request whose ``Host`` header is not one of `allowed`
    (exact names, ``*.example.com`` patterns, ``*`` for any). Without it, a
    web page on evil.example whose DNS then answers 127.0.0.1 (DNS
    rebinding) can call a server on loopback from the user's browser.
    Starlette's TrustedHostMiddleware does the same check but refuses in
    plain text, and API clients expect OpenAI's error body."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = [h.lower() for h in allowed]

    def allows(self, value: str | None) -> bool:
        try:  # urlsplit takes the port off and the brackets off an IPv6 address
            host = urlsplit(f"//{value}").hostname if value else None
        except ValueError:
            return False
        if not host:
            return False
        return any(p == "*" or host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in self.allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = Headers(scope=scope).get("host")
            if not self.allows(value):
                error = APIError(400, f"the Host header {value!r} is not a name of this server (llaf serve "
                                      f"--allowed-hosts)", code="invalid_host")
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses a request body over `max_body` bytes: at once if its
    Content-Length says so, else when the bytes read pass the limit (a
    chunked body), before the rest is read or parsed. Recent FastAPI's own
    max_body_size does the same, but answers in plain text whatever the
    error handlers say."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await body_too_large(self.max_body).response()(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    # Raised inside the route's reading of the body: FastAPI
                    # passes HTTPExceptions on to the handler below.
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, counted, send)


def body_too_large(max_body: int) -> APIError:
    return APIError(413, f"the request body is larger than {max_body} bytes (llaf serve --max-body)")


def default_allowed_hosts(host: str, loopback: bool) -> list[str] | None:
    """The Host headers a server listening on `host` answers to when not
    told: on loopback, localhost names only (DNS rebinding cannot forge
    them); elsewhere any (None), as the address is meant to be reached."""
    return [*LOOPBACK_HOSTS, host.lower()] if loopback else None


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for request headers.

    uvicorn times out idle keep-alive connections, but not a client that
    sends part of its headers and then waits: it would hold its connection
    forever (slowloris). The deadline runs from a connection's start, and on
    a kept-alive connection from the first byte of the next request, until
    uvicorn has the request's headers; then the connection is closed."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._start_deadline()

        def data_received(self, data: bytes) -> None:
            if self.header_deadline is None and (self.cycle is None or self.cycle.response_complete):
                self._start_deadline()  # the first bytes of the next request
            super().data_received(data)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers have arrived
                self._stop_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_deadline()
            super().connection_lost(exc)

        def _start_deadline(self) -> None:
            self._stop_deadline()
            self.header_deadline = self.loop.call_later(seconds, self._headers_too_late)

        def _stop_deadline(self) -> None:
            if self.header_deadline is not None:
                self.header_deadline.cancel()
                self.header_deadline = None

        def _headers_too_late(self) -> None:
            self.header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return Protocol
