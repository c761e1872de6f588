"""Three fixes to how Daphne serves websockets, installed from eventfeed/asgi.py.

1. Backpressure on reads. Daphne reads every frame a client sends into an unbounded queue,
   whatever the application's pace. Once a connection's queue holds READ_HIGH_WATER messages,
   Daphne stops reading that socket (Twisted's pauseProducing): the kernel buffers fill and
   the sender's writes block. Reading resumes below READ_LOW_WATER. Nothing is dropped; a
   producer is slowed to the speed at which events are stored.
2. Slow readers. Sends never block in Daphne: frames for a client that does not read pile up
   in the server's memory. Past WRITE_LIMIT buffered bytes the connection is closed with 1013
   and a reason, so the client knows it fell behind and reconnects to catch up.
3. Fan-out sends. Daphne frames every text anew and hands it to the reactor, which writes it on
   a later turn after registering the socket for writability and unregisters it after: with a
   thousand live feeds, that bookkeeping cost more than the writes. A text sent to many sockets
   in a row is framed once, and a frame goes to the socket at once when nothing waits before it.
4. Garbage collection. A full collection walks every object the process holds while every
   socket waits: with a thousand feeds open it took 150-250 ms on a 2-core machine, and landed
   in the middle of the live benchmark's runs. The objects loaded at start (Django and the app,
   100,000 of them, 70 ms of each walk) live as long as the process and are frozen out of
   collections; young collections run less often, so fewer short-lived objects (a message, a
   request) live long enough to be promoted to the old generation, whose growth is what starts
   a full collection. Big blocks are given back to the system when freed (return_big_blocks).
5. Close codes and reasons. Daphne drops the `reason` of `websocket.close`, and autobahn's
   sendClose refuses protocol codes such as 1008 (policy violation, what Prefect's protocol
   answers a bad key with) and 1013 (try again later), which Daphne then turns into 1011. The
   close frame is sent as asked. Every close Daphne makes on its own (an application error, the
   connection's age limit, a message over the size limit) carries a reason too, and a failing
   connection gets a close frame rather than a dropped TCP connection.
6. Message size. Daphne's default limit is 1 MiB, under the documented 1,500,000-byte event
   limit: a bigger event aborted the connection and every frame queued after it. Websocket
   messages may be WS_MAX_MESSAGE_BYTES (four events' worth), so that an event over the event
   limit is refused by validation with an error frame while the connection goes on.
7. Checkpoints. The Prefect SDK counts every event sent before a pong as delivered. On
   CHECKPOINT_PATHS a ping is handed to the application in order with the frames (as
   `websocket.checkpoint`), which answers `websocket.pong` once everything before it is stored.
"""

from __future__ import annotations

import gc
import logging
import os

from autobahn.websocket.protocol import PreparedMessage

log = logging.getLogger(__name__)

# The event limit is read here, not from Django's settings: Daphne imports this module's
# patches before any request, and the settings module may not be configured in every caller.
MAX_EVENT_BYTES = int(os.environ.get("EVENTFEED_MAX_EVENT_BYTES", 1_500_000))
WS_MAX_MESSAGE_BYTES = int(os.environ.get("EVENTFEED_WS_MAX_MESSAGE_BYTES", 4 * MAX_EVENT_BYTES))
CHECKPOINT_PATHS = {b"/api/events/in"}
CLOSE_REASONS = {
    1000: "Closing",
    1001: "Server going away; reconnect",
    1011: "Internal server error; reconnect and resend what was not confirmed",
}
READ_HIGH_WATER = 1_000
READ_LOW_WATER = 100
POLL_SECONDS = 0.01
# Bytes a client may leave unread before it is closed as too slow.
WRITE_LIMIT = int(os.environ.get("EVENTFEED_WS_WRITE_LIMIT", 16 * 1024 * 1024))
SLOW_CLOSE_SECONDS = 30
TOO_SLOW = "Client too slow: frames were not read in time; reconnect and catch up"
# Allocations between young collections (Python's default: 700). A batch of 500 events is about
# 30,000 objects alive until its request ends: at 10,000, collections ran in the middle of each
# request, moved its objects to the older generations and traversed them again there, which
# cost ingest 15-20 µs of CPU per event (bench_ingest); at 50,000 most of a request's objects
# are freed before a collection sees them. The live push's latency did not suffer (bench_live,
# 1,000 sockets at 1,000 events/s: p99 267-269 ms against 309-397 ms).
GC_YOUNG = 50_000
# The live push sends each of its few distinct texts to many sockets in a row.
FRAMED_KEEP = 4
_framed: dict[int, tuple[str, bytes]] = {}


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
    on_connect = WebSocketProtocol.onConnect
    on_ping = WebSocketProtocol.onPing

    def onConnect(self, request):
        # Copied from the factory when the connection was made; set per connection so that
        # however Daphne was started (its CLI, runserver, tests), the limits are the same.
        self.maxMessagePayloadSize = self.maxFramePayloadSize = WS_MAX_MESSAGE_BYTES
        self.failByDrop = False
        return on_connect(self, request)

    def onPing(self, payload):
        queue = getattr(self, "application_queue", None)
        if queue is not None and getattr(self, "path", None) in CHECKPOINT_PATHS and self.state == self.STATE_OPEN:
            queue.put_nowait({"type": "websocket.checkpoint", "payload": payload})
            return
        on_ping(self, payload)

    def serverClose(self, code=None):
        code = 1000 if code is None else code
        close(self, code, CLOSE_REASONS.get(code, "Closing"))

    def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False):
        if code is not None and not reasonUtf8 and code in CLOSE_REASONS:
            reasonUtf8 = CLOSE_REASONS[code].encode()
        return send_close_frame(self, code=code, reasonUtf8=reasonUtf8, isReply=isReply)

    send_close_frame = WebSocketProtocol.sendCloseFrame

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
        if kind == "websocket.pong":
            if self.state == self.STATE_OPEN:
                self.sendPong(message.get("payload") or None)
            return
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
            text = message.get("text")
            if text and message.get("bytes") is None and self.state == self.STATE_OPEN and self._perMessageCompress is None and not self.send_queue:
                write_now(self.transport, framed(text))
                return
        handle_reply(self, message)

    WebSocketProtocol.onMessage = onMessage
    WebSocketProtocol.onConnect = onConnect
    WebSocketProtocol.onPing = onPing
    WebSocketProtocol.serverClose = serverClose
    WebSocketProtocol.sendCloseFrame = sendCloseFrame
    WebSocketProtocol.handle_reply = handle_reply_
    WebSocketProtocol._eventfeed_installed = True
    calm_collector()


def when_serving(callback) -> None:
    """Call `callback(loop)` on Daphne's event loop once its reactor runs (not under another
    server, nor in a process that only imported the application)."""
    import sys

    reactor = sys.modules.get("twisted.internet.reactor")
    loop = getattr(reactor, "_asyncioEventloop", None)
    if loop is not None:
        reactor.callWhenRunning(lambda: callback(loop))


def calm_collector() -> None:
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
    return_big_blocks()


# glibc's M_MMAP_THRESHOLD: blocks at least this big get their own mapping, given back to the
# system when freed.
MMAP_THRESHOLD = 128 * 1024


def return_big_blocks() -> None:
    """A request's big strings (bodies, payloads, COPY text) come back to the system when freed.
    glibc raises its mmap threshold after the first big free, up to 32 MB, and later big blocks
    then come from the heap, which fragments and keeps them: RSS stayed hundreds of MB up after
    a few large requests. A fixed threshold keeps the old behaviour."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, MMAP_THRESHOLD)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


def close(protocol, code: int, reason: str) -> None:
    """Start the closing handshake with any valid code, and the reason (at most 123 bytes)."""
    if protocol.state in (protocol.STATE_CLOSING, protocol.STATE_CLOSED):
        return
    protocol.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123] or None, isReply=False)


def framed(text: str) -> bytes:
    """The text as a server's websocket frame."""
    hit = _framed.get(id(text))
    if hit is not None and hit[0] is text:
        return hit[1]
    frame = PreparedMessage(text.encode("utf-8"), isBinary=False, applyMask=False, doNotCompress=True).payloadHybi
    if len(_framed) >= FRAMED_KEEP:
        del _framed[next(iter(_framed))]
    _framed[id(text)] = (text, frame)
    return frame


def write_now(transport, data: bytes) -> None:
    """Twisted's transport.write, without waiting for the next turn of the reactor when nothing
    is buffered: the order of bytes is kept, and what the kernel does not take is buffered."""
    try:
        idle = (not transport.TLS and transport.connected and not transport.disconnecting and not transport._writeDisconnected
                and not transport._tempDataLen and len(transport.dataBuffer) == transport.offset)
    except AttributeError:
        idle = False
    sent = transport.writeSomeData(data) if idle else 0
    # A lost connection comes back as an exception: the buffered write lets Twisted find it.
    if isinstance(sent, Exception):
        sent = 0
    if sent < len(data):
        transport.write(data[sent:] if sent else data)


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
