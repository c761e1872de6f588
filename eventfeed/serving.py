"""Three fixes to how Daphne serves websockets, installed from eventfeed/asgi.py.

1. Backpressure on reads. Daphne reads every frame a client sends into an unbounded queue,
   whatever the application's pace. Once a connection's queue holds READ_HIGH_WATER messages,
   Daphne stops reading that socket (Twisted's pauseProducing): the kernel buffers fill and
   the sender's writes block. Reading resumes below READ_LOW_WATER. Nothing is dropped; a
   producer is slowed to the speed at which events are stored.
2. Slow readers. Sends never block in Daphne: frames for a client that does not read pile up
   in the server's memory. Past WRITE_LIMIT buffered bytes the connection is closed with 1013
   and a reason, so the client knows it fell behind and reconnects to catch up.
3. Close codes and reasons. Daphne drops the `reason` of `websocket.close`, and autobahn's
   sendClose refuses protocol codes such as 1008 (policy violation, what Prefect's protocol
   answers a bad key with) and 1013 (try again later), which Daphne then turns into 1011. The
   close frame is sent as asked.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

READ_HIGH_WATER = 1_000
READ_LOW_WATER = 100
POLL_SECONDS = 0.01
# Bytes a client may leave unread before it is closed as too slow.
WRITE_LIMIT = int(os.environ.get("EVENTFEED_WS_WRITE_LIMIT", 16 * 1024 * 1024))
SLOW_CLOSE_SECONDS = 30
TOO_SLOW = "Client too slow: frames were not read in time; reconnect and catch up"


def buffered_bytes(transport) -> int:
    """Bytes written to a Twisted TCP transport and not yet taken by the kernel."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return 0


def install() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # served by another ASGI server
        return
    if getattr(WebSocketProtocol, "_eventfeed_installed", False):
        return
    on_message = WebSocketProtocol.onMessage
    handle_reply = WebSocketProtocol.handle_reply

    def onMessage(self, payload, isBinary):
        on_message(self, payload, isBinary)
        queue = getattr(self, "application_queue", None)
        if queue is None or getattr(self, "_eventfeed_paused", False) or queue.qsize() < READ_HIGH_WATER:
            return
        self._eventfeed_paused = True
        self.transport.pauseProducing()
        _resume_when_drained(self)

    def handle_reply_(self, message):
        kind = message.get("type")
        if kind == "websocket.close" and self.state != self.STATE_CONNECTING:
            close(self, message.get("code") or 1000, message.get("reason") or "")
            return
        if kind == "websocket.send" and self.transport is not None:
            if getattr(self, "_eventfeed_too_slow", False):
                return
            if buffered_bytes(self.transport) > WRITE_LIMIT:
                self._eventfeed_too_slow = True
                log.warning("websocket %s: closing a client that stopped reading", self.client_addr)
                # The close frame queues behind everything unread: give the client time to
                # read its way to it (autobahn would drop the connection after 1 s).
                self.closeHandshakeTimeout = SLOW_CLOSE_SECONDS
                close(self, 1013, TOO_SLOW)
                return
        handle_reply(self, message)

    WebSocketProtocol.onMessage = onMessage
    WebSocketProtocol.handle_reply = handle_reply_
    WebSocketProtocol._eventfeed_installed = True


def close(protocol, code: int, reason: str) -> None:
    """Start the closing handshake with any valid code, and the reason (at most 123 bytes)."""
    if protocol.state in (protocol.STATE_CLOSING, protocol.STATE_CLOSED):
        return
    protocol.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123] or None, isReply=False)


def _resume_when_drained(protocol) -> None:
    from twisted.internet import reactor

    def check():
        if protocol.transport is None or protocol.application_queue.qsize() <= READ_LOW_WATER:
            protocol._eventfeed_paused = False
            if protocol.transport is not None:
                protocol.transport.resumeProducing()
            return
        reactor.callLater(POLL_SECONDS, check)

    reactor.callLater(POLL_SECONDS, check)
