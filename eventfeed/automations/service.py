"""The evaluator service: an asyncio task group that

- reads stored events from the NAMED channel "automations", a member of the "events" group
  (with channels-redis every process reads the same named channel, so each event is evaluated
  by exactly one process; membership expires or is lost with Redis' data, so it is renewed
  every few seconds);
- ticks the clock every second, closing due proactive windows (rows held by another process
  are skipped, SKIP LOCKED);
- runs due action runs, each on its own thread with a timeout;
- catches up from the store (catchup.py): events the channel layer never delivered (Redis
  flushed, no evaluator reading, a batch that failed) are read back by arrival a few seconds
  later and evaluated, each once.

It runs inside every Daphne process (started from eventfeed/asgi.py; EVENTFEED_AUTOMATIONS_IN_PROCESS
=false turns that off) and in `manage.py run_automations`, a dedicated worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from eventfeed.events.ingest import EVENTS_GROUP
from eventfeed.layers import receive

from . import actions, catchup, engine, wakeup

log = logging.getLogger(__name__)

CHANNEL = "automations"
# Renewed as often as the live hub checks its own: a Redis that forgot its groups costs the
# evaluator a few seconds, not a minute.
MEMBERSHIP_EVERY = float(settings.EVENTFEED_LIVE_CHECK_SECONDS)
TICK_EVERY = 1.0
CATCH_UP_EVERY = 1.0
MIN_TICK = 0.02
MAX_RUNNING_ACTIONS = 16
FORGET_EVERY = 60.0
# The evaluator's batches (see Service._consumer): how long it gathers after a first message,
# how many events at most, and how many published messages it holds in memory (ingest publishes
# up to 200 events a message); past that the messages wait in the channel layer.
LINGER = 0.2
BATCH_EVENTS = 2000
QUEUED_MESSAGES = 50

_running: dict[int, "Service"] = {}  # pid -> the service of this process


def _in_thread(fn):
    # A pool thread per call (not Django's one sync thread), with old connections closed.
    return database_sync_to_async(fn, thread_sensitive=False)


class Service:
    def __init__(self, *, consume: bool = True, layer=None):
        self.consume = consume
        self.layer = layer or get_channel_layer()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake = asyncio.Event()
        self.running_actions: set[asyncio.Task] = set()

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        loops = [self._ticker(), self._actions(), self._catch_up()]
        if self.consume:
            loops += [self._membership(), self._consumer()]
        await asyncio.gather(*loops)

    async def _membership(self) -> None:
        layer = self.layer
        while True:
            try:
                await layer.group_add(EVENTS_GROUP, CHANNEL)
            except Exception:
                log.exception("automations: could not join the events group")
            await asyncio.sleep(MEMBERSHIP_EVERY)

    async def _consumer(self) -> None:
        """Receives on one task and evaluates on another, in batches: a batch's cost is mostly
        per transaction, not per event, so the evaluator gathers what arrives within LINGER
        seconds of a first message (and whatever queued up while it was busy) into one
        evaluation of up to BATCH_EVENTS events. Under load it takes big batches instead of
        falling behind; a quiet stream waits at most LINGER."""
        layer = self.layer
        await layer.group_add(EVENTS_GROUP, CHANNEL)
        queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUED_MESSAGES)
        receiver = asyncio.ensure_future(self._receive(queue))
        evaluate = _in_thread(engine.evaluate)
        loop = asyncio.get_running_loop()
        try:
            while True:
                events = list(await queue.get())
                deadline = loop.time() + LINGER
                while len(events) < BATCH_EVENTS:
                    if not queue.empty():
                        events += queue.get_nowait()
                        continue
                    try:
                        events += await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
                    except asyncio.TimeoutError:
                        break
                try:
                    await evaluate(events)
                except Exception:
                    log.exception("automations: evaluating %d events failed", len(events))
        finally:
            # Its receive is over before this returns, as when the consumer received itself.
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)

    async def _receive(self, queue: asyncio.Queue) -> None:
        layer = self.layer
        while True:
            try:
                message = await receive(layer, CHANNEL)
            except Exception:
                log.exception("automations: channel layer receive failed")
                await asyncio.sleep(1)
                continue
            if message.get("type") == "events.stored" and message.get("events"):
                # When full, this waits: the messages wait in the channel layer instead.
                await queue.put(message["events"])

    async def _catch_up(self) -> None:
        pending = _in_thread(catchup.pending)
        sweep = _in_thread(catchup.sweep)
        while True:
            wait = CATCH_UP_EVERY
            try:
                if await pending():
                    done = await sweep()
                    if done is not None and done[0] == catchup.BATCH:
                        wait = 0  # a backlog: the next batch at once
            except Exception:
                log.exception("automations: the catch-up from the store failed")
            await asyncio.sleep(wait)

    async def _ticker(self) -> None:
        tick = _in_thread(engine.tick)
        forget = _in_thread(engine.forget_claims)
        until_due = _in_thread(engine.seconds_to_next_due)
        last_forget = 0.0
        while True:
            wait = TICK_EVERY
            try:
                await tick()
                if self.loop.time() - last_forget > FORGET_EVERY:
                    last_forget = self.loop.time()
                    await forget(timezone.now())
                # Wake at the next deadline rather than up to a second after it (a new window
                # ends at least 10 s after it opens, so a second's sleep never misses one).
                due = await until_due()
                # Long overdue after a tick: a row another process holds, or one that fails;
                # it is retried at the usual pace, not in a busy loop.
                if due is not None and due > -TICK_EVERY / 2:
                    wait = min(TICK_EVERY, max(MIN_TICK, due))
            except Exception:
                log.exception("automations: tick failed")
            await asyncio.sleep(wait)

    async def _actions(self) -> None:
        claim = _in_thread(actions.claim_due)
        while True:
            try:
                room = MAX_RUNNING_ACTIONS - len(self.running_actions)
                runs = await claim(room) if room > 0 else []
            except Exception:
                log.exception("automations: claiming action runs failed")
                runs = []
            for run in runs:
                task = asyncio.ensure_future(self._execute(run))
                self.running_actions.add(task)
                task.add_done_callback(self.running_actions.discard)
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=TICK_EVERY)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()

    def wake_actions(self) -> None:
        """From any thread: claim due action runs now rather than at the next poll."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.wake.set)

    async def _execute(self, run) -> None:
        timeout = float(run.action.get("timeout", actions.DEFAULT_TIMEOUT)) + 5
        try:
            await asyncio.wait_for(_in_thread(actions.execute)(run), timeout=timeout)
        except asyncio.TimeoutError:
            # The thread may still finish; if it does not, the lease expires and the run is retried.
            log.warning("automation %s action %d: no outcome after %.0f s", run.automation_id, run.index, timeout)
        except Exception:
            log.exception("automation %s action %d: execution failed", run.automation_id, run.index)


def start(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Start this process's service on `loop` (the running one by default), once."""
    if os.getpid() in _running:
        return
    service = _running[os.getpid()] = Service()
    wakeup.register(service.wake_actions)
    loop = loop or asyncio.get_event_loop()
    task = loop.create_task(service.run())
    task.add_done_callback(_report)


def _report(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("automations: the evaluator stopped", exc_info=task.exception())


def _daphne_reactor():
    """Daphne's asyncio reactor (installed in every process that loads the daphne app, but only
    running in a process that serves)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    return reactor if getattr(reactor, "_asyncioEventloop", None) is not None else None


class StartEvaluator:
    """Wraps the ASGI application. Under Daphne the service starts on the server's loop when the
    reactor starts running: Daphne makes its loop the current one only then, after importing
    this module, so `asyncio.get_event_loop()` at import time would be another loop. If the
    application was imported before this process's reactor existed (a forked test server), the
    first connection starts it instead."""

    def __init__(self, application):
        self.application = application
        reactor = _daphne_reactor()
        if settings.EVENTFEED_AUTOMATIONS_IN_PROCESS and reactor is not None:
            reactor.callWhenRunning(lambda: start(reactor._asyncioEventloop))

    async def __call__(self, scope, receive, send):
        if settings.EVENTFEED_AUTOMATIONS_IN_PROCESS and os.getpid() not in _running:
            reactor = _daphne_reactor()
            if reactor is not None and reactor.running:
                start(asyncio.get_running_loop())
        return await self.application(scope, receive, send)
