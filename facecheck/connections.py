"""Spread keep-alive clients over the front workers.

The front's workers accept from one shared socket, and whichever is in its event loop
first accepts a burst of new connections, so under load one worker holds most of them
(docs/performance.md, "Settings in the code"). Asking a client to reconnect every
`max_requests` requests on a connection (as nginx's keepalive_requests does) lets the least
busy worker, the first to accept, pick it up."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TRACKED_CONNECTIONS = 4096  # oldest counters are forgotten past this (connections come and go)


class RotateConnections:
    """ASGI middleware: the `max_requests`-th response on a connection carries
    `Connection: close`. 0 disables it."""

    def __init__(self, app: ASGIApp, max_requests: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self._served: OrderedDict[tuple, int] = OrderedDict()  # (client host, port) -> requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or self.max_requests <= 0 or not client:
            await self.app(scope, receive, send)
            return
        key = tuple(client)
        served = self._served.pop(key, 0) + 1
        if served < self.max_requests:
            self._served[key] = served
            if len(self._served) > _TRACKED_CONNECTIONS:
                self._served.popitem(last=False)
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
