"""TCP backpressure for websockets served by Daphne.

Daphne reads every frame a client sends into an unbounded asyncio queue, whatever the
application's pace, so a fast producer can fill the server's memory. Here, once a connection's
queue holds HIGH_WATER messages, Daphne stops reading that socket (Twisted's pauseProducing):
the kernel buffers fill and the sender's writes block. Reading resumes below LOW_WATER. Nothing
is dropped; the producer is slowed to the speed at which events are stored.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

HIGH_WATER = 1_000
LOW_WATER = 100
POLL_SECONDS = 0.01


def install() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # served by another ASGI server
        return
    if getattr(WebSocketProtocol, "_eventfeed_backpressure", False):
        return
    original = WebSocketProtocol.onMessage

    def onMessage(self, payload, isBinary):
        original(self, payload, isBinary)
        queue = getattr(self, "application_queue", None)
        if queue is None or getattr(self, "_eventfeed_paused", False) or queue.qsize() < HIGH_WATER:
            return
        self._eventfeed_paused = True
        self.transport.pauseProducing()
        _resume_when_drained(self)

    WebSocketProtocol.onMessage = onMessage
    WebSocketProtocol._eventfeed_backpressure = True


def _resume_when_drained(protocol) -> None:
    from twisted.internet import reactor

    def check():
        if protocol.application_queue.qsize() <= LOW_WATER or protocol.transport is None:
            protocol._eventfeed_paused = False
            if protocol.transport is not None:
                protocol.transport.resumeProducing()
            return
        reactor.callLater(POLL_SECONDS, check)

    reactor.callLater(POLL_SECONDS, check)
