"""Ingest throughput against a live Daphne server on PostgreSQL, and the database's own ceiling.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventfeed_ingest python manage.py bench_ingest

Posts N events (~1 KB each, from the demo catalogue) in batches over HTTP, then N more one frame at
a time over /api/events/in, and prints for each: events/s until all are committed and queryable,
losses, and the server's peak RSS. Then COPYs the same rows into scratch copies of the tables
(same indexes) and prints that ceiling and the ratio.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from eventfeed.events import demo
from eventfeed.events.ingest import EVENT_COLUMNS, RESOURCE_COLUMNS, copy_text
from eventfeed.events.models import ApiKey, Event, EventResource
from eventfeed.events.schema import validate_event

from ._serving import cpu_seconds, free_port, peak_rss_mb, wait_for


class Command(BaseCommand):
    help = "Measure ingest throughput over HTTP and the websocket door against the COPY ceiling."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=100_000)
        parser.add_argument("--batch", type=int, default=500)
        # Several producers at once, as a fleet of workers posts: one client waiting for each
        # commit before sending its next batch would leave a core idle.
        parser.add_argument("--connections", type=int, default=4, help="concurrent HTTP clients")
        parser.add_argument("--automations", type=int, default=0,
                            help="also run the HTTP phase with this many enabled automations")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_ingest measures PostgreSQL: set DATABASE_URL=postgres://…")
        n, batch = options["events"], options["batch"]
        call_command("migrate", verbosity=0)
        self.truncate()
        phases = 3 if options["automations"] else 2
        self.stdout.write(f"Generating {phases * n:,} demo events…")
        events = [demo.wire(e) for e in demo.backfill_events(phases * n, 7, seed=11)]
        events = [dict(e, follows=None) for e in events]  # the parts are sent separately
        http_events, ws_events, more_events = events[:n], events[n : 2 * n], events[2 * n :]
        bodies = [json.dumps(http_events[i : i + batch]).encode() for i in range(0, n, batch)]
        frames = [json.dumps(e) for e in ws_events]
        size = sum(len(b) for b in bodies) / n
        self.stdout.write(f"  {n:,} + {n:,} events, {size:,.0f} bytes each on average")
        _, key = ApiKey.create("bench-ingest")

        port = free_port()
        env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "false"), "SECRET_KEY": os.environ.get("SECRET_KEY", "bench"),
               "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        # The access log goes to a file: an unread pipe would fill and stall the server.
        log = open(f"/tmp/bench_ingest_server_{port}.log", "w")
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "eventfeed.asgi:application"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for(port)
            cpu = cpu_seconds(server.pid)
            http_rate = self.http_phase(port, key, bodies, options["connections"], [e["id"] for e in http_events])
            http_cpu, cpu = (cpu_seconds(server.pid) - cpu) / n * 1e6, cpu_seconds(server.pid)
            ws_rate = self.ws_phase(port, key, frames, n)
            ws_cpu = (cpu_seconds(server.pid) - cpu) / n * 1e6
            if options["automations"]:
                with_automations = self.automations_phase(port, key, more_events, batch, options)
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait()
            log.close()
        ceiling = self.copy_ceiling(http_events, batch)
        self.stdout.write("")
        self.stdout.write(f"HTTP, batches of {batch}:       {http_rate:9,.0f} events/s   losses 0   "
                          f"({options['connections']} clients; server CPU {http_cpu:.0f} µs/event)")
        self.stdout.write(f"websocket, one frame each:  {ws_rate:9,.0f} events/s   losses 0   "
                          f"(1 client; server CPU {ws_cpu:.0f} µs/event)")
        self.stdout.write(f"COPY ceiling (same rows):   {ceiling:9,.0f} events/s")
        self.stdout.write(f"HTTP / COPY ceiling:        {http_rate / ceiling:9.0%}")
        self.stdout.write(f"server peak RSS:            {rss:9,.0f} MB")
        if options["automations"]:
            rate, latencies, fired = with_automations
            self.stdout.write(f"HTTP with {options['automations']} automations: {rate:9,.0f} events/s   "
                              f"({rate / http_rate:.0%} of the rate without)")
            if latencies:
                latencies.sort()
                p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
                self.stdout.write(f"firing latency (event commit → automation.triggered stored): "
                                  f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms over {fired:,} firings")
            else:
                self.stdout.write("no automation fired")

    def automations_phase(self, port: int, key: str, events: list[dict], batch: int, options) -> tuple:
        """The HTTP phase again with N enabled automations evaluated in the server process."""
        from eventfeed.automations.store import parse_automation, save_automation

        names = sorted({e["event"] for e in events})
        for i in range(options["automations"]):
            # Reactive triggers over the demo's names and resources, a few of them matching each
            # event, with no actions: what is measured is evaluation and firing.
            trigger = {"type": "event", "posture": "Reactive", "expect": [names[i % len(names)]],
                       "match": {"prefect.resource.id": "prefect.*"}, "for_each": ["prefect.resource.id"],
                       "threshold": 1 + i % 3, "within": 60 if i % 3 else 0}
            save_automation(parse_automation({"name": f"bench {i}", "trigger": trigger, "actions": []}))
        time.sleep(6)  # evaluators pick up new automations within their reload interval
        bodies = [json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)]
        rate = self.http_phase(port, key, bodies, options["connections"], [e["id"] for e in events])
        time.sleep(10)  # the last firings
        # Each firing names its triggering event as a related resource `prefect.event.<id>`.
        firings = list(
            EventResource.objects.filter(event_name="prefect.automation.triggered", role="triggering-event")
            .values_list("resource_id", "event__received")
        )
        triggering = dict(
            Event.objects.filter(id__in=[rid.removeprefix("prefect.event.") for rid, _ in firings]).values_list("id", "received")
        )
        latencies = []
        for rid, fired in firings:
            source = triggering.get(uuid.UUID(rid.removeprefix("prefect.event.")))
            if source is not None:
                latencies.append((fired - source).total_seconds() * 1000)
        return rate, latencies, len(latencies)

    def truncate(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {Event._meta.db_table}, {EventResource._meta.db_table}")


    def stored(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {Event._meta.db_table}")
            return cursor.fetchone()[0]

    def http_phase(self, port: int, key: str, bodies: list[bytes], connections: int, ids: list[str]) -> float:
        n = len(ids)
        queue = list(reversed(bodies))
        lock = threading.Lock()
        errors: list[str] = []

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while True:
                with lock:
                    if not queue:
                        break
                    body = queue.pop()
                conn.request("POST", "/api/events", body, {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    errors.append(f"{response.status} {data[:200]!r}")
            conn.close()

        start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Each answer comes after its commit, so everything is queryable now.
        elapsed = time.perf_counter() - start
        if errors:
            raise CommandError(f"HTTP ingest failed: {errors[:3]}")
        # Automations store events of their own: count the ones sent.
        stored = Event.objects.filter(id__in=ids).count()
        if stored != n:
            raise CommandError(f"HTTP: {n - stored} events lost")
        return n / elapsed

    def ws_phase(self, port: int, key: str, frames: list[str], n: int) -> float:
        import websockets

        async def send() -> float:
            start = time.perf_counter()
            async with websockets.connect(f"ws://127.0.0.1:{port}/api/events/in", subprotocols=["prefect"],
                                          max_size=None) as ws:
                await ws.send(json.dumps({"type": "auth", "token": key}))
                assert json.loads(await ws.recv())["type"] == "auth_success"
                for frame in frames:
                    await ws.send(frame)
                # Until the last frame is stored; the server never answers a good frame.
                while await asyncio.to_thread(self.stored) < 2 * n:
                    await asyncio.sleep(0.05)
                return time.perf_counter() - start

        elapsed = asyncio.run(send())
        stored = self.stored()
        if stored != 2 * n:
            raise CommandError(f"websocket: {2 * n - stored} events lost")
        return n / elapsed

    def copy_ceiling(self, events: list[dict], batch: int) -> float:
        """The same rows COPYed by psycopg into scratch copies of the tables (with their
        indexes), in the same batch size. The rows are built before the clock starts: this is
        the database's ceiling, not Python's."""
        clean = [validate_event(e)[0] for e in events]
        for e in clean:
            e.received = e.occurred
        batches = [copy_text(clean[i : i + batch]) for i in range(0, len(clean), batch)]
        ev, er = Event._meta.db_table, EventResource._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_copy_event, bench_copy_eventresource")
            cursor.execute(f"CREATE TABLE bench_copy_event (LIKE {ev} INCLUDING ALL)")
            cursor.execute(f"CREATE TABLE bench_copy_eventresource (LIKE {er} INCLUDING ALL)")
        raw = connection.connection
        start = time.perf_counter()
        for event_text, resource_text in batches:
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY bench_copy_event ({EVENT_COLUMNS}) FROM STDIN") as copy:
                    copy.write(event_text)
                with cursor.copy(f"COPY bench_copy_eventresource ({RESOURCE_COLUMNS}) FROM STDIN") as copy:
                    copy.write(resource_text)
            raw.commit()
        elapsed = time.perf_counter() - start
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_copy_event, bench_copy_eventresource")
        return len(clean) / elapsed
