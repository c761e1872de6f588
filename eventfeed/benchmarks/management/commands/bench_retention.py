"""How long pruning takes at benchmark scale, and the feed's queries before and after it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventfeed_bench_retention python manage.py bench_retention

Loads --events synthetic events over --days days (benchdata, the same as bench_feed), times a
handful of feed queries, prunes everything older than --keep days with prune_events' code (on
PostgreSQL: dropping whole day partitions), and times the same queries again. Pruning destroys
the data: the next run reloads it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment

from eventfeed.benchmarks import benchdata
from eventfeed.benchmarks.management.commands.bench_feed import fmt
from eventfeed.events import partitions, retention
from eventfeed.events.models import ApiKey, Event


class Command(BaseCommand):
    help = "Time prune_events on benchmark-scale data (PostgreSQL), and the feed's queries before and after."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=2_000_000)
        parser.add_argument("--days", type=float, default=30)
        parser.add_argument("--keep", type=int, default=7, help="retention in days: older days are pruned")
        parser.add_argument("--runs", type=int, default=10)
        parser.add_argument("--reload", action="store_true", help="reload even if --events events are stored")

    def handle(self, *args, events: int, days: float, keep: int, runs: int, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_retention measures PostgreSQL: set DATABASE_URL=postgres://…")
        call_command("migrate", verbosity=0)
        # A run that was stopped before it pruned leaves the whole load behind (~25 minutes on
        # a busy 2-core machine); a run that pruned leaves too few events and the next reloads.
        stored = Event.objects.count() if not options["reload"] else 0
        if stored >= events:
            self.stdout.write(f"Using the {stored:,} events already stored (--reload to regenerate).")
        else:
            self.stdout.write(f"Loading {events:,} events over {days:g} days (COPY)…")
            benchdata.load(events, days, log=self.stdout.write)
        setup_test_environment()
        user, _ = get_user_model().objects.get_or_create(username="bench")
        self.client = Client()
        self.client.force_login(user)
        _, self.key = ApiKey.create("bench")
        self.runs = runs

        stored_days = len(partitions.existing_days())
        self.stdout.write(f"\nBefore pruning: {Event.objects.count():,} events, {stored_days} day partitions per table")
        before = self.queries()

        settings.EVENTFEED_RETENTION_DAYS = keep
        settings.EVENTFEED_RETENTION_OVERRIDES = {}
        lines: list[str] = []
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        # The days retention drops were written days ago and are on disk; the ones just loaded
        # are still in the kernel's dirty pages, and removing a file waits for its pages being
        # written. Written out first, as they would be, so that the prune is timed as it runs.
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        os.sync()
        self.stdout.write(f"\nCHECKPOINT and sync before pruning: {time.perf_counter() - started:.1f} s")
        sampler = WaitSampler(pid)
        sampler.start()
        cpu = backend_cpu(pid)
        started = time.perf_counter()
        plans = retention.prune(out=lines.append)
        took = time.perf_counter() - started
        cpu = [b - a for a, b in zip(cpu, backend_cpu(pid))] if cpu else None
        sampler.stop()
        removed = sum(p.events for p in plans)
        self.stdout.write(
            f"prune_events (retention {keep} days): {len(plans)} days, ~{removed:,} events removed in {took:.3f} s"
        )
        for line in lines:
            if line.startswith("dropped"):
                self.stdout.write("  " + line)
        if cpu:
            self.stdout.write(f"  the database backend: on a CPU {cpu[0]:.2f} s (user) + {cpu[1]:.2f} s (system), "
                              f"waiting for a CPU {cpu[2]:.2f} s, the rest blocked (I/O)")
        self.stdout.write("Where the prune's time went (pg_stat_activity sampled every 5 ms; idle = in Python):")
        for line in sampler.report():
            self.stdout.write("  " + line)
        self.stdout.write(f"After pruning: {Event.objects.count():,} events, {len(partitions.existing_days())} day partitions per table")
        after = self.queries()

        self.stdout.write(f"\nServer-side time, ms (median / p95 over {runs} warm runs)")
        self.stdout.write(f"{'case':34} {'before prune':>16} {'after prune':>16}")
        for label in before:
            self.stdout.write(f"{label:34} {before[label]:>16} {after[label]:>16}")

    def queries(self) -> dict[str, str]:
        pool = "prefect.work-pool.pool-0"
        cases = {
            "feed, no filter (30 d)": ("get", "/events/?" + urlencode({"range": "30d"})),
            "feed, event prefix (7 d)": ("get", "/events/?" + urlencode({"range": "7d", "event": "prefect.flow-run.*"})),
            "feed, related resource (30 d)": ("get", "/events/?" + urlencode({"range": "30d", "related": f"work-pool:{pool}"})),
            "feed, free text (30 d)": ("get", "/events/?" + urlencode({"range": "30d", "q": "timeout"})),
            "histogram 7 d": ("get", "/events/histogram?" + urlencode({"range": "7d"})),
            "/api/events/filter, no filter": ("api", {"limit": 50}),
            "/api/events/filter, exact resource": ("api", {"filter": {"resource": {"id": ["prefect.flow-run.fr-00042"]}}}),
        }
        return {label: self.time(kind, target) for label, (kind, target) in cases.items()}

    def time(self, kind: str, target) -> str:
        samples = []
        for _ in range(self.runs + 2):
            t = time.perf_counter()
            if kind == "get":
                r = self.client.get(target)
            else:
                r = self.client.post("/api/events/filter", json.dumps(target), content_type="application/json",
                                     HTTP_AUTHORIZATION=f"Bearer {self.key}")
            samples.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise CommandError(f"{target} answered {r.status_code}")
        return fmt(samples[2:])


def backend_cpu(pid: int) -> tuple[float, float, float] | None:
    """User and system CPU seconds of a database backend, and the seconds it was ready to run
    but waited for a CPU, when the server runs on this machine."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/schedstat") as f:
            waited = int(f.read().split()[1]) / 1e9
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks, waited


class WaitSampler(threading.Thread):
    """Samples what one backend is doing (statement and wait event) from a connection of its own:
    where a command's seconds go, in the database or in Python between statements."""

    def __init__(self, pid: int, every: float = 0.005):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: Counter = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        import psycopg

        params = {k: v for k, v in connection.get_connection_params().items()
                  if k in ("dbname", "user", "password", "host", "port", "sslmode")}
        with psycopg.connect(**params, autocommit=True) as conn:
            while not self.done.is_set():
                row = conn.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity WHERE pid = %s",
                    [self.pid],
                ).fetchone()
                if row:
                    state, kind, event, query = row
                    if state == "active":
                        self.samples[(query, f"{kind}:{event}" if kind else "CPU")] += 1
                    else:
                        self.samples[("", state)] += 1
                time.sleep(self.every)

    def stop(self) -> None:
        self.done.set()
        self.join()

    def report(self) -> list[str]:
        total = sum(self.samples.values()) or 1
        return [f"{n / total:5.0%}  {what:24} {query}" for (query, what), n in self.samples.most_common(12)]
