"""The live push under load: C browser-feed sockets, events ingested at R per second.

    python manage.py bench_live                       # one Daphne process, in-memory layer
    REDIS_URL=redis://127.0.0.1:6379/9 python manage.py bench_live --processes 2

Opens C `/ws/feed` subscribers from this one client process (a third of them match each event:
each subscribes to one of three event names), posts events to the HTTP door at R per second and
prints deliveries per second, latency from the start of the POST that stored an event to its
receipt (an upper bound of commit-to-receipt), losses, the server processes' CPU and peak RSS, and
this client's CPU (far from a core, or the latencies would be the client's). For the same C, and
with the same client, it then measures the raw `websockets` library's broadcast() ceiling and
prints the ratio.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import multiprocessing
import re
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from eventfeed.events.models import ApiKey

from eventfeed.benchmarks.processes import cpu_seconds, free_port, peak_rss_mb, wait_for

NAMES = ["bench.live.a", "bench.live.b", "bench.live.c"]
# POSTs in flight at once at most, when the server answers more slowly than ticks come.
POSTERS = 4
ROW_ID = re.compile(rb'"id": "([0-9a-f-]{36})"')


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))] if values else float("nan")


def produce(port: int, key: str, rate: int, seconds: float) -> dict[str, tuple[float, int]]:
    """Post rate/10 events every 100 ms through the HTTP door; event id -> (POST start, name).

    Each tick's POST starts on time even while an earlier one is still being answered: on one
    connection a slow answer would hold the next ticks back, and the rate would then be the
    producer's, not the one asked for.
    """
    local = threading.local()
    connections = []

    def post(batch: list[dict]) -> tuple[float, list[dict]]:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connections.append(local.conn)
        t0 = time.time()
        local.conn.request("POST", "/api/events", json.dumps(batch), {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        response = local.conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"ingest answered {response.status}")
        return t0, batch

    per_tick = max(1, rate // 10)
    posts = []
    with ThreadPoolExecutor(POSTERS) as pool:
        start = time.perf_counter()
        tick = 0
        while time.perf_counter() - start < seconds:
            batch = []
            for j in range(per_tick):
                n = (tick * per_tick + j) % 3
                batch.append({"id": str(uuid.uuid4()), "occurred": datetime.now(timezone.utc).isoformat(), "event": NAMES[n],
                              "resource": {"prefect.resource.id": f"bench.resource.{j}", "prefect.resource.name": f"resource {j}"},
                              "related": [{"prefect.resource.id": "prefect.flow.bench", "prefect.resource.role": "flow"}],
                              "payload": {"n": tick}})
            posts.append(pool.submit(post, batch))
            tick += 1
            pause = start + tick * 0.1 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        sent = {e["id"]: (t0, NAMES.index(e["event"])) for t0, batch in (p.result() for p in posts) for e in batch}
    for conn in connections:
        conn.close()
    return sent


class Socket(asyncio.Protocol):
    """A websocket client spoken with websockets' sans-I/O protocol.

    A thousand of these share the one client process: with asyncio streams, a task and a
    timeout per receive, the client cost more than the server's sends, and its backlog showed
    up as latency. Here a frame is handled where it arrives, with the time its bytes were read.
    """

    def __init__(self, uri: str, headers: dict[str, str] | None = None):
        self.ws = ClientProtocol(parse_uri(uri), max_size=None)
        request = self.ws.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        self.ws.send_request(request)
        self.opened = asyncio.get_running_loop().create_future()
        self.transport = None

    def text(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.write()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif event.opcode is Opcode.TEXT:
                self.text(event.data, now)
        # Pongs and the closing handshake.
        self.write()

    def eof_received(self) -> None:
        self.ws.receive_eof()

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before the handshake: {exc}"))

    def send(self, text: str) -> None:
        self.ws.send_text(text.encode())
        self.write()

    def close(self) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self.write()
        self.transport.close()

    def write(self) -> None:
        for data in self.ws.data_to_send():
            if data and not self.transport.is_closing():
                self.transport.write(data)


class FeedSocket(Socket):
    """A browser's `/ws/feed`: the reply to its subscription, then the ids of the rows it gets."""

    def __init__(self, i: int, uri: str, headers: dict[str, str], received: dict[bytes, dict[int, float]]):
        super().__init__(uri, headers)
        self.i = i
        self.received = received
        self.reply = asyncio.get_running_loop().create_future()

    def text(self, data: bytes, now: float) -> None:
        if not self.reply.done():
            self.reply.set_result(json.loads(data)["type"])
            return
        # Only the ids are needed: a regex over the raw frame costs this one client process far
        # less than decoding and parsing a thousand sockets' frames.
        for event_id in ROW_ID.findall(data):
            self.received.setdefault(event_id, {})[self.i] = now

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        if not self.reply.done():
            self.reply.set_exception(ConnectionError(f"feed socket {self.i} closed: {exc or self.ws.close_exc}"))


class CountingSocket(Socket):
    """A client of the raw broadcast: when its first and its last message came."""

    def __init__(self, uri: str, messages: int):
        super().__init__(uri)
        self.messages = messages
        self.count = 0
        self.first = self.last = 0.0
        self.done = asyncio.get_running_loop().create_future()

    def text(self, data: bytes, now: float) -> None:
        self.count += 1
        if self.count == 1:
            self.first = now
        if self.count == self.messages:
            self.last = now
            self.done.set_result(None)


class Command(BaseCommand):
    help = "Measure the live push: deliveries/s, latency, losses, server CPU and RSS, against raw websockets."

    def add_arguments(self, parser):
        parser.add_argument("--subscribers", default="100,1000")
        parser.add_argument("--rates", default="100,1000")
        parser.add_argument("--seconds", type=float, default=10)
        parser.add_argument("--processes", type=int, default=1, help="Daphne processes (more than one needs REDIS_URL)")

    def handle(self, *args, **options):
        if options["processes"] > 1 and not settings.REDIS_URL:
            raise CommandError("several processes share the stream through Redis: set REDIS_URL")
        call_command("migrate", verbosity=0)
        user, _ = get_user_model().objects.get_or_create(username="bench-live")
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        _, key = ApiKey.create("bench-live")

        ports = [free_port() for _ in range(options["processes"])]
        from eventfeed.events.management.commands.quickstart import LOCAL_HTTP

        env = {**os.environ, **LOCAL_HTTP, "SECRET_KEY": settings.SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1,localhost",
               "EVENTFEED_AUTOMATIONS_IN_PROCESS": "false"}
        logs = [open(f"/tmp/bench_live_server_{port}.log", "w") for port in ports]
        servers = [
            subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "eventfeed.asgi:application"],
                             env=env, stdout=log, stderr=subprocess.STDOUT)
            for port, log in zip(ports, logs)
        ]
        layer = "channels-redis" if settings.REDIS_URL else "in-memory layer"
        self.stdout.write(f"{len(servers)} Daphne process(es), {layer}, {options['seconds']:g} s per run\n")
        self.stdout.write(f"{'C':>5} {'R/s':>5} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lost':>5} "
                          f"{'CPU %':>6} {'RSS MB':>7} {'client CPU %':>13} {'raw ws/s':>9} {'ratio':>6}")
        try:
            for port in ports:
                wait_for(port)
            for c in [int(x) for x in options["subscribers"].split(",")]:
                ceiling = self.raw_ceiling(c)
                for r in [int(x) for x in options["rates"].split(",")]:
                    result = asyncio.run(self.run(ports, session.session_key, key, c, r, options["seconds"], servers))
                    self.stdout.write(
                        f"{c:>5} {r:>5} {result['rate']:>13,.0f} {result['p50']:>8.0f} {result['p99']:>8.0f} {result['max']:>8.0f} "
                        f"{result['lost']:>5} {result['cpu']:>6.0f} {result['rss']:>7.0f} {result['client_cpu']:>13.0f} {ceiling:>9,.0f} {result['rate'] / ceiling:>6.1%}"
                    )
        finally:
            for server in servers:
                server.terminate()
                server.wait()
            for log in logs:
                log.close()

    async def run(self, ports, session_key, key, c, r, seconds, servers) -> dict:
        received: dict[bytes, dict[int, float]] = {}  # event id -> {subscriber: receipt time}
        sockets: list[FeedSocket] = []
        loop = asyncio.get_running_loop()

        # Browsers open their feeds over time, not in one instant: at most 50 handshakes at once
        # keep them within Daphne's 5-s handshake timeout on this 2-core machine.
        handshakes = asyncio.Semaphore(50)

        async def subscribe(i: int):
            port = ports[i % len(ports)]
            headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}", "Origin": f"http://127.0.0.1:{port}"}
            async with handshakes:
                _, sock = await loop.create_connection(
                    lambda: FeedSocket(i, f"ws://127.0.0.1:{port}/ws/feed", headers, received), "127.0.0.1", port)
                sockets.append(sock)
                await sock.opened
                sock.send(json.dumps({"type": "subscribe", "query": f"event={NAMES[i % 3]}"}))
                assert await sock.reply == "subscribed"

        try:
            await asyncio.wait_for(asyncio.gather(*(subscribe(i) for i in range(c))), 120)
            # A full collection of this process's thousand sockets stops them all for a few
            # hundred ms: the measuring client must not add its own pauses to the latencies.
            gc.collect()
            gc.freeze()
            gc.disable()
            before = [cpu_seconds(s.pid) for s in servers]
            client_before = time.process_time()
            # The producer runs in its own process, so that it keeps its pace whatever the
            # subscribers cost this one; times are wall-clock, comparable across the two.
            with multiprocessing.get_context("fork").Pool(1) as pool:
                sent = await asyncio.to_thread(pool.apply, produce, (ports[0], key, r, seconds))
            # Let the last pushes arrive.
            await asyncio.sleep(2)
            elapsed = seconds + 2
            cpu = sum(cpu_seconds(s.pid) - b for s, b in zip(servers, before)) / elapsed * 100
            client_cpu = (time.process_time() - client_before) / elapsed * 100
        finally:
            gc.enable()
            gc.unfreeze()
            for sock in sockets:
                sock.close()

        if len(sent) < r * seconds * 0.95:
            self.stderr.write(f"the producer posted {len(sent)} events of the {r * seconds:.0f} asked for: the server did not keep up with ingest")
        latencies, lost, deliveries = [], 0, 0
        for event_id, (t0, n) in sent.items():
            expected = [i for i in range(c) if i % 3 == n]
            got = received.get(event_id.encode(), {})
            lost += sum(1 for i in expected if i not in got)
            for i in expected:
                if i in got:
                    latencies.append((got[i] - t0) * 1000)
                    deliveries += 1
        return {
            "rate": deliveries / seconds, "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": percentile(latencies, 0.99), "max": max(latencies, default=float("nan")), "lost": lost,
            "cpu": cpu, "rss": sum(peak_rss_mb(s.pid) for s in servers), "client_cpu": client_cpu,
        }

    def raw_ceiling(self, c: int, messages: int = 200) -> float:
        """Deliveries/s of websockets.broadcast() to c local clients, same frame size."""
        port = free_port()
        frame = json.dumps({"type": "rows", "rows": [{"id": str(uuid.uuid4()), "occurred": "x", "html": "x" * 1500}]})
        server_code = textwrap.dedent(f"""
            import asyncio, logging, websockets
            logging.getLogger("websockets").setLevel(logging.CRITICAL)  # the port probe is not a client
            async def main():
                clients = set()
                ready = asyncio.Event()
                async def handler(ws):
                    clients.add(ws)
                    if len(clients) == {c}:
                        ready.set()
                    await ws.wait_closed()
                async with websockets.serve(handler, "127.0.0.1", {port}, max_queue=None):
                    await ready.wait()
                    await asyncio.sleep(0.5)
                    for _ in range({messages}):
                        websockets.broadcast(clients, {frame!r})
                        await asyncio.sleep(0)
                    await asyncio.sleep(30)
            asyncio.run(main())
        """)
        server = subprocess.Popen([sys.executable, "-c", server_code])
        try:
            wait_for(port)

            async def clients() -> float:
                # The same client as the feed's, so that the ratio compares the servers.
                loop = asyncio.get_running_loop()
                handshakes = asyncio.Semaphore(50)
                sockets = []

                async def client():
                    async with handshakes:
                        _, sock = await loop.create_connection(lambda: CountingSocket(f"ws://127.0.0.1:{port}", messages), "127.0.0.1", port)
                        sockets.append(sock)
                        await sock.opened
                    await sock.done

                try:
                    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(c))), 120)
                finally:
                    for sock in sockets:
                        sock.close()
                return c * messages / (max(s.last for s in sockets) - min(s.first for s in sockets))

            return asyncio.run(clients())
        finally:
            server.terminate()
            server.wait()
