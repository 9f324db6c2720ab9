"""Many WebSocket text messages in one write: an ASGI extension on uvicorn's protocol.

ASGI sends one message per ``websocket.send``; through uvicorn each is a
coroutine, a frame built by ``websockets`` and a ``write()`` system call. A
subscription event fanned out to 100 subscriptions multiplexed on one client
connection would be 100 of each. :class:`BatchingWebSocketProtocol` is uvicorn's
sans-I/O websockets protocol plus one extension, advertised in the scope as
``scope["extensions"]["shopgraph.websocket.send_texts"]``: the message
``{"type": "shopgraph.websocket.send_texts", "texts": [b"...", ...]}`` writes
each UTF-8 text as its own frame, all in one ``write()``; the extension's
``write(texts) -> bool`` does the same synchronously when the transport can take
it at once (the common case), so fanning an event out to a connection needs no
task switch. Apps check the scope and fall back to ``websocket.send`` per
message under any other server.

Server frames are unmasked; without a negotiated extension (the router turns
permessage-deflate off: events are small, and compressing each copy of a
fanned-out event would cost more than it saves) a frame is a 2 to 10 byte header
and the payload, built here. With an extension the frames go through
``websockets`` as usual, still in one write.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from router.connection_limits import GuardedHttpToolsProtocol

SEND_TEXTS = "shopgraph.websocket.send_texts"


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2) around ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class BatchingWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][SEND_TEXTS] = {"write": self.write_texts}

    def write_texts(self, texts: list[bytes]) -> bool:
        """Write ``texts`` now if the transport takes them (open, not over its high-water mark).

        False: nothing was written; send the message form, which waits for the transport.
        Synchronous, so a fanned-out event costs no task or future per connection.
        """
        if self.disconnected or self.close_sent or not self.handshake_complete or not self.writable.is_set():
            return False
        if self.transport.is_closing():
            return False
        if self.conn.extensions:
            for text in texts:
                self.conn.send_text(text)
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            self.transport.write(b"".join([text_frame(t) for t in texts]))
        return True

    async def send(self, message: Any) -> None:
        if message["type"] != SEND_TEXTS:
            await super().send(message)
            return
        await self.writable.wait()  # the transport's buffer is over its high-water mark: wait, as send does
        if self.disconnected:
            raise ClientDisconnected()
        if not self.write_texts(message["texts"]):
            raise RuntimeError(f"{SEND_TEXTS} before the handshake or after the close")


# How uvicorn serves the router (``uvicorn.Config(app, **SERVER_OPTIONS)``).
SERVER_OPTIONS: dict[str, Any] = {
    "ws": BatchingWebSocketProtocol,
    "ws_per_message_deflate": False,
    "http": GuardedHttpToolsProtocol,  # per-address connection cap, request-head timeout
}
