"""The live push under load: C browser-feed sockets, events ingested at R per second.

    python manage.py bench_live                       # one Daphne process, in-memory layer
    REDIS_URL=redis://127.0.0.1:6379/9 python manage.py bench_live --processes 2

Opens C `/ws/feed` subscribers from this one client process (a third of them match each event:
each subscribes to one of three event names), posts events to the HTTP door at R per second and
prints deliveries per second, latency from the POST that stored an event to its receipt (an upper
bound of commit-to-receipt), losses, and the server processes' CPU and peak RSS. For the same C it
then measures the raw `websockets` library's broadcast() ceiling and prints the ratio.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import multiprocessing
import re
import os
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from eventfeed.events.models import ApiKey

from ._serving import cpu_seconds, free_port, peak_rss_mb, wait_for

NAMES = ["bench.live.a", "bench.live.b", "bench.live.c"]
ROW_ID = re.compile(rb'"id": "([0-9a-f-]{36})"')


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))] if values else float("nan")


def produce(port: int, key: str, rate: int, seconds: float) -> dict[str, tuple[float, int]]:
    """Post rate/10 events every 100 ms through the HTTP door; event id -> (POST start, name)."""
    sent = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    per_tick = max(1, rate // 10)
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
        t0 = time.time()
        for e in batch:
            sent[e["id"]] = (t0, NAMES.index(e["event"]))
        conn.request("POST", "/api/events", json.dumps(batch), {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"ingest answered {response.status}")
        tick += 1
        pause = start + tick * 0.1 - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    conn.close()
    return sent


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
        env = {**os.environ, "DEBUG": "false", "SECRET_KEY": settings.SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1,localhost",
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
                          f"{'CPU %':>6} {'RSS MB':>7} {'raw ws/s':>9} {'ratio':>6}")
        try:
            for port in ports:
                wait_for(port)
            for c in [int(x) for x in options["subscribers"].split(",")]:
                ceiling = self.raw_ceiling(c)
                for r in [int(x) for x in options["rates"].split(",")]:
                    result = asyncio.run(self.run(ports, session.session_key, key, c, r, options["seconds"], servers))
                    self.stdout.write(
                        f"{c:>5} {r:>5} {result['rate']:>13,.0f} {result['p50']:>8.0f} {result['p99']:>8.0f} {result['max']:>8.0f} "
                        f"{result['lost']:>5} {result['cpu']:>6.0f} {result['rss']:>7.0f} {ceiling:>9,.0f} {result['rate'] / ceiling:>6.1%}"
                    )
        finally:
            for server in servers:
                server.terminate()
                server.wait()
            for log in logs:
                log.close()

    async def run(self, ports, session_key, key, c, r, seconds, servers) -> dict:
        import websockets

        received: dict[str, dict[str, float]] = {}  # event id -> {subscriber: receipt time}
        subscribed = 0
        all_subscribed = asyncio.Event()
        done = asyncio.Event()

        # Browsers open their feeds over time, not in one instant: at most 50 handshakes at once
        # keep them within Daphne's 5-s handshake timeout on this 2-core machine.
        handshakes = asyncio.Semaphore(50)

        async def subscriber(i: int):
            nonlocal subscribed
            port = ports[i % len(ports)]
            headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}", "Origin": f"http://127.0.0.1:{port}"}
            async with handshakes:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/feed", additional_headers=headers,
                                              max_size=None, open_timeout=60)
                await ws.send(json.dumps({"type": "subscribe", "query": f"event={NAMES[i % 3]}"}))
                assert json.loads(await ws.recv())["type"] == "subscribed"
            async with ws:
                subscribed += 1
                if subscribed == c:
                    all_subscribed.set()
                while not done.is_set():
                    try:
                        message = await asyncio.wait_for(ws.recv(decode=False), 0.5)
                    except asyncio.TimeoutError:
                        continue
                    now = time.time()
                    # Only the ids are needed: a regex over the raw frame costs this one client
                    # process far less than decoding and parsing a thousand sockets' frames.
                    for event_id in ROW_ID.findall(message):
                        received.setdefault(event_id.decode(), {})[i] = now

        tasks = [asyncio.ensure_future(subscriber(i)) for i in range(c)]
        await asyncio.wait_for(all_subscribed.wait(), 120)
        before = [cpu_seconds(s.pid) for s in servers]
        # The producer runs in its own process, so that it keeps its pace whatever the
        # subscribers cost this one; times are wall-clock, comparable across the two.
        with multiprocessing.get_context("fork").Pool(1) as pool:
            sent = await asyncio.to_thread(pool.apply, produce, (ports[0], key, r, seconds))
        # Let the last pushes arrive.
        await asyncio.sleep(2)
        elapsed = seconds + 2
        cpu = sum(cpu_seconds(s.pid) - b for s, b in zip(servers, before)) / elapsed * 100
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)

        latencies, lost, deliveries = [], 0, 0
        for event_id, (t0, n) in sent.items():
            expected = [i for i in range(c) if i % 3 == n]
            got = received.get(event_id, {})
            lost += sum(1 for i in expected if i not in got)
            for i in expected:
                if i in got:
                    latencies.append((got[i] - t0) * 1000)
                    deliveries += 1
        return {
            "rate": deliveries / seconds, "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": percentile(latencies, 0.99), "max": max(latencies, default=float("nan")), "lost": lost,
            "cpu": cpu, "rss": sum(peak_rss_mb(s.pid) for s in servers),
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
                import websockets

                first, last = [], []

                async def client():
                    async with websockets.connect(f"ws://127.0.0.1:{port}", max_size=None, open_timeout=60) as ws:
                        await ws.recv()
                        first.append(time.perf_counter())
                        for _ in range(messages - 1):
                            await ws.recv()
                        last.append(time.perf_counter())

                await asyncio.wait_for(asyncio.gather(*(client() for _ in range(c))), 120)
                return c * messages / (max(last) - min(first))

            return asyncio.run(clients())
        finally:
            server.terminate()
            server.wait()
