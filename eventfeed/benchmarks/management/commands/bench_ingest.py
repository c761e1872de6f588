"""Ingest throughput against a live Daphne server on PostgreSQL, and the database's own ceiling.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventfeed_ingest python manage.py bench_ingest

Posts N events (~1 KB each, from the demo catalogue) in batches over HTTP, then N more one frame at
a time over /api/events/in, and prints for each: events/s until all are committed and queryable,
losses, and the server's peak RSS. Then COPYs the same rows into scratch copies of the tables
(same indexes) and prints that ceiling and the ratio.

With `--webhooks N`, N more events are posted one per request, to `POST /api/events` and then
through `/hooks/{slug}` (the GitHub preset's template and signature check, a ~1 KB push
delivery each), and it prints both rates and their ratio (the target is at least half).

With `--automations N`, N more events go over HTTP with N enabled automations evaluated by the
server, and it prints the rate against the one without, how many firings there were and the
firing latency of the reactive ones. The automations (`automation_mix`) are a realistic set, not
a worst case nor an idle one: every kind watches common names and the stream's own resources, so
each event meets several and the evaluator matches and counts for real, and they fire on what
real automations fire on (failures, late runs, runs that stop beating), about 1 % of the events.
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

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from eventfeed.events import demo
from eventfeed.events.ingest import EVENT_COLUMNS, RESOURCE_COLUMNS, copy_text
from eventfeed.events.models import ApiKey, Event, EventResource
from eventfeed.events.schema import decode_clean

from eventfeed.benchmarks.processes import cpu_seconds, free_port, peak_rss_mb, wait_for


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
        parser.add_argument("--webhooks", type=int, default=0,
                            help="also post this many events one per request, to /api/events and through /hooks/{slug}")

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
        from eventfeed.events.management.commands.quickstart import LOCAL_HTTP

        # Production settings over plain HTTP on loopback: without LOCAL_HTTP every request is
        # redirected to https (SECURE_SSL_REDIRECT) and nothing is stored.
        env = {**os.environ, **LOCAL_HTTP, "SECRET_KEY": os.environ.get("SECRET_KEY", "bench"),
               "ALLOWED_HOSTS": "127.0.0.1,localhost",
               # The automations phase moves the recorded days to start now (see there), so its
               # events lie up to that span ahead: the default day-ahead bound refuses them (422).
               "EVENTFEED_MAX_FUTURE_SECONDS": str(31 * 86400)}
        # The access log goes to a file: an unread pipe would fill and stall the server.
        log = open(f"/tmp/bench_ingest_server_{port}.log", "w")
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "eventfeed.asgi:application"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for(port)
            cpu = cpu_seconds(server.pid)
            self.settle()
            http_rate = self.http_phase(port, key, bodies, options["connections"], [e["id"] for e in http_events])
            http_cpu, cpu = (cpu_seconds(server.pid) - cpu) / n * 1e6, cpu_seconds(server.pid)
            self.settle()
            ws_rate = self.ws_phase(port, key, frames, n)
            ws_cpu = (cpu_seconds(server.pid) - cpu) / n * 1e6
            if options["webhooks"]:
                single_rate, webhook_rate = self.webhook_phases(port, key, options["webhooks"], options["connections"])
            if options["automations"]:
                cpu = cpu_seconds(server.pid)
                with_automations = self.automations_phase(port, key, more_events, batch, options)
                automations_cpu = (cpu_seconds(server.pid) - cpu) / n * 1e6
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait()
            log.close()
        self.settle()
        ceiling = self.copy_ceiling(http_events, batch)
        self.stdout.write("")
        self.stdout.write(f"HTTP, batches of {batch}:       {http_rate:9,.0f} events/s   losses 0   "
                          f"({options['connections']} clients; server CPU {http_cpu:.0f} µs/event)")
        self.stdout.write(f"websocket, one frame each:  {ws_rate:9,.0f} events/s   losses 0   "
                          f"(1 client; server CPU {ws_cpu:.0f} µs/event)")
        self.stdout.write(f"COPY ceiling (same rows):   {ceiling:9,.0f} events/s")
        self.stdout.write(f"HTTP / COPY ceiling:        {http_rate / ceiling:9.0%}")
        self.stdout.write(f"server peak RSS:            {rss:9,.0f} MB")
        if options["webhooks"]:
            self.stdout.write(f"HTTP, one event per request: {single_rate:8,.0f} events/s   ({options['connections']} clients)")
            self.stdout.write(f"webhook, GitHub preset:     {webhook_rate:9,.0f} events/s   "
                              f"({webhook_rate / single_rate:.0%} of one event per request; template, signature, request log)")
        if options["automations"]:
            rate, latencies, fired, sent = with_automations
            self.stdout.write(f"HTTP with {options['automations']} automations: {rate:9,.0f} events/s   "
                              f"({rate / http_rate:.0%} of the rate without; server CPU {automations_cpu:.0f} µs/event, "
                              f"evaluation and firings included)")
            self.stdout.write(f"firings: {fired:,} ({fired / sent:.2%} of the {sent:,} events), {len(latencies):,} of them reactive")
            if latencies:
                latencies.sort()
                p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
                self.stdout.write(f"firing latency (event commit → automation.triggered stored): "
                                  f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms over the reactive firings")

    def automations_phase(self, port: int, key: str, events: list[dict], batch: int, options) -> tuple:
        """The HTTP phase again with N enabled automations (`automation_mix`) evaluated in the
        server process. The events are moved in time so that the stream starts now: replayed as
        they were, 7 days of proactive windows would all be overdue at the evaluator's first
        clock tick and fire at once, which no live system sees."""
        from datetime import datetime, timezone as dt_timezone

        from eventfeed.automations.models import Automation, EvaluatedEvent, Firing
        from eventfeed.automations.store import parse_automation, save_automation
        from eventfeed.events.wire import iso
        from eventfeed.events.problems import parse_time

        shift = datetime.now(dt_timezone.utc) - min(parse_time(e["occurred"]) for e in events)
        events = [dict(e, occurred=iso(parse_time(e["occurred"]) + shift)) for e in events]
        # The demo events are the same on every run: an earlier run's claims (kept an hour)
        # would make the evaluator skip them as already evaluated.
        EvaluatedEvent.objects.all().delete()
        # The same start as the HTTP phase it is compared with: into tables holding the other
        # phases' 200,000 events, every insert costs more, automations or not.
        self.truncate()
        created = [
            # No actions: what is measured is evaluation and firing.
            save_automation(parse_automation({"name": f"bench {i}", "trigger": trigger, "actions": []}))
            for i, trigger in enumerate(automation_mix(events, options["automations"]))
        ]
        time.sleep(6)  # evaluators pick up new automations within their reload interval
        bodies = [json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)]
        self.settle()
        rate = self.http_phase(port, key, bodies, options["connections"], [e["id"] for e in events])
        # The last firings: until the count stops moving.
        count, seen = -1, Firing.objects.count()
        while seen != count:
            time.sleep(2)
            count, seen = seen, Firing.objects.count()
        reactive = {a.id for a in Automation.objects.all() if a.trigger.get("posture") == "Reactive"}
        latencies = []
        firings = list(Firing.objects.values_list("automation_id", "event_id", "triggering_event_id"))
        received = dict(Event.objects.filter(id__in=[f[1] for f in firings] + [f[2] for f in firings if f[2]])
                        .values_list("id", "received"))
        for automation_id, event_id, triggering_id in firings:
            # A proactive firing comes when a window closes, not when an event is stored.
            if automation_id in reactive and triggering_id in received and event_id in received:
                latencies.append((received[event_id] - received[triggering_id]).total_seconds() * 1000)
        # The next run on this database starts without them (its phases count the stored events).
        Automation.objects.filter(id__in=[a.id for a in created]).delete()
        return rate, latencies, len(firings), len(events)

    def settle(self) -> None:
        """Each phase starts right after a checkpoint: otherwise one lands at a different point
        of each run (a run writes more WAL than max_wal_size) and the phases compared with each
        other differ by 20 % or more for that alone."""
        try:
            with connection.cursor() as cursor:
                cursor.execute("CHECKPOINT")
        except DatabaseError:
            pass  # not a superuser: the phases are noisier, not wrong

    def truncate(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {Event._meta.db_table}, {EventResource._meta.db_table}")


    def stored(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {Event._meta.db_table}")
            return cursor.fetchone()[0]

    def webhook_phases(self, port: int, key: str, n: int, connections: int) -> tuple[float, float]:
        """n demo events posted one per request, then n GitHub push deliveries through a webhook
        with the GitHub preset and its signature check: the rates of both."""
        import hashlib
        import hmac
        import uuid

        from eventfeed.webhooks import presets, store
        from eventfeed.webhooks.models import Webhook
        from eventfeed.webhooks.verification import Verification

        singles = [dict(demo.wire(e), follows=None) for e in demo.backfill_events(n, 7, seed=13)]
        self.settle()
        single_rate = self.http_phase(port, key, [json.dumps(e).encode() for e in singles], connections, [e["id"] for e in singles])
        secret = "bench-secret"
        webhook = store.save(Webhook(name="bench GitHub"), {"template": presets.GITHUB, "verification": Verification("github", secret)})
        requests, ids = [], []
        for i in range(n):
            delivery = str(uuid.uuid4())
            body = json.dumps({
                "ref": "refs/heads/main", "before": "0" * 40, "after": f"{i:040x}",
                "repository": {"id": 1296269, "full_name": f"acme/service-{i % 20}", "private": False,
                               "html_url": f"https://github.com/acme/service-{i % 20}", "default_branch": "main"},
                "pusher": {"name": "octocat", "email": "octocat@example.com"}, "sender": {"login": "octocat", "id": 1, "type": "User"},
                "head_commit": {"id": f"{i:040x}", "message": f"Fix the basket, take {i}", "timestamp": "2026-11-21T09:30:00Z",
                                "author": {"name": "Octo Cat", "email": "octocat@example.com"}, "added": [], "removed": [],
                                "modified": ["shop/basket.py", "shop/tests/test_basket.py"]},
            }).encode()
            signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            requests.append((body, {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
                                    "X-Hub-Signature-256": signature, "User-Agent": "GitHub-Hookshot/bench"}))
            ids.append(delivery)
        self.settle()
        try:
            webhook_rate = self.http_phase(port, key, requests, connections, ids, path=f"/hooks/{webhook.slug}", status=204)
        finally:
            webhook.delete()
        return single_rate, webhook_rate

    def http_phase(self, port: int, key: str, bodies: list, connections: int, ids: list[str], *,
                   path: str = "/api/events", status: int = 200) -> float:
        """Send every body (bytes, or (bytes, headers)) from `connections` clients at once."""
        n = len(ids)
        queue = list(reversed(bodies))
        lock = threading.Lock()
        errors: list[str] = []
        auth = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while True:
                with lock:
                    if not queue:
                        break
                    body = queue.pop()
                body, headers = body if isinstance(body, tuple) else (body, auth)
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                data = response.read()
                if response.status != status:
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
        """The same rows COPYed by psycopg into the events tables themselves (emptied first, with
        their partitions and indexes), in the same batch size, a commit per batch. Scratch copies
        made with LIKE would miss the indexes: LIKE copies none from a partitioned table. The rows
        are built before the clock starts: this is the database's ceiling, not Python's. They are
        built as the server builds them (the one-pass decoder leaves repeated words to PostgreSQL)."""
        clean = [e for i in range(0, len(events), batch) for e in decode_clean(json.dumps(events[i : i + batch]).encode())]
        for e in clean:
            e.received = e.occurred
        batches = [copy_text(clean[i : i + batch]) for i in range(0, len(clean), batch)]
        ev, er = Event._meta.db_table, EventResource._meta.db_table
        self.truncate()
        raw = connection.connection
        start = time.perf_counter()
        for event_text, resource_text in batches:
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY {ev} ({EVENT_COLUMNS}) FROM STDIN") as copy:
                    copy.write(event_text)
                with cursor.copy(f"COPY {er} ({RESOURCE_COLUMNS}) FROM STDIN") as copy:
                    copy.write(resource_text)
            raw.commit()
        elapsed = time.perf_counter() - start
        self.truncate()
        return len(clean) / elapsed


def automation_mix(events: list[dict], count: int) -> list[dict]:
    """`count` triggers such as a team running Prefect would keep, cycling through eight kinds.
    Every one watches names that are common in the stream (flow-run states and heartbeats,
    task-run, worker, pod and order events, some by prefix or glob), with `match` and
    `match_related` on the stream's own deployments, flows, work pools and tags, so each event
    meets several of them and most of the work is matching and counting; they fire on what
    real automations fire on (failures, lateness, runs that stop beating, a pool going down),
    a small minority of the events.

    The resources come from the events themselves, so the mix follows the demo catalogue."""
    def related(role: str) -> list[str]:
        return sorted({r["prefect.resource.id"] for e in events for r in e["related"] if r.get("prefect.resource.role") == role})

    deployments, flows, pools, tags = related("deployment"), related("flow"), related("work-pool"), related("tag")
    failed = ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"]
    ends = [*failed, "prefect.flow-run.Completed", "prefect.flow-run.Cancelled", "prefect.flow-run.Cancelling",
            "prefect.flow-run.AwaitingRetry", "prefect.flow-run.Paused", "prefect.flow-run.Suspended"]
    run = {"prefect.resource.id": "prefect.flow-run.*"}
    kinds = [
        # A failed or crashed run of one deployment.
        lambda i: {"expect": failed, "match": run,
                   "match_related": {"prefect.resource.role": "deployment", "prefect.resource.id": deployments[i % len(deployments)]}},
        # 3 failures of the same flow within an hour, among the runs carrying a tag.
        lambda i: {"expect": ["prefect.flow-run.*"], "match": {**run, "prefect.state-type": ["FAILED", "CRASHED"]},
                   "match_related": [{"prefect.resource.role": "tag", "prefect.resource.id": tags[i % len(tags)]}],
                   "for_each": ["related:flow:prefect.resource.id"], "threshold": 3, "within": 3600},
        # A run of a pool whose heartbeats stop without an end state (Prefect's zombie runs).
        lambda i: {"posture": "Proactive", "after": ["prefect.flow-run.heartbeat"],
                   "expect": ["prefect.flow-run.heartbeat", *ends], "match": run,
                   "match_related": {"prefect.resource.role": "work-pool", "prefect.resource.id": pools[i % len(pools)]},
                   "for_each": ["prefect.resource.id"], "within": 90},
        # A pending run of a flow that is not running 10 minutes later.
        lambda i: {"posture": "Proactive", "after": ["prefect.flow-run.Pending"], "expect": ["prefect.flow-run.Running"],
                   "match": run, "match_related": {"prefect.resource.role": "flow", "prefect.resource.id": flows[i % len(flows)]},
                   "for_each": ["prefect.resource.id"], "within": 600},
        # Late runs: a second one for the same deployment within an hour.
        lambda i: {"expect": ["prefect.flow-run.Late", "prefect.flow-run.AwaitingConcurrencySlot"], "match": run,
                   "match_related": {"prefect.resource.role": "tag", "prefect.resource.id": tags[(i + 3) % len(tags)]},
                   "for_each": ["related:deployment:prefect.resource.id"], "threshold": 2, "within": 3600},
        # Anything failed on some infrastructure: a glob on the name, every event is a candidate.
        lambda i: {"expect": ["*.failed", "*.evicted"],
                   "match_related": {"prefect.resource.role": "work-pool", "prefect.resource.id": pools[i % len(pools)]}},
        # Every 100th task run of a tagged flow run finishing: a counter on a busy name.
        lambda i: {"expect": ["prefect.task-run.Completed", "prefect.task-run.Failed"],
                   "match_related": {"prefect.resource.role": "tag", "prefect.resource.id": tags[(i + 7) % len(tags)]},
                   "threshold": 100, "within": 0},
        # A pool, queue or deployment going not-ready, or a run crashing, within 10 minutes.
        lambda i: {"type": "compound", "require": "all", "within": 600, "triggers": [
            {"expect": ["prefect.work-pool.not-ready", "prefect.work-queue.not-ready", "prefect.deployment.not-ready"]},
            {"expect": ["prefect.flow-run.Crashed"], "match": run,
             "match_related": {"prefect.resource.role": "work-pool", "prefect.resource.id": pools[i % len(pools)]}}]},
    ]
    return [{"type": "event", **kinds[i % len(kinds)](i // len(kinds))} for i in range(count)]
