"""How long pruning takes at benchmark scale, and the feed's queries before and after it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventfeed_bench_retention python manage.py bench_retention

Loads --events synthetic events over --days days (benchdata, the same as bench_feed), times a
handful of feed queries, prunes everything older than --keep days with prune_events' code (on
PostgreSQL: dropping whole day partitions), and times the same queries again. Pruning destroys
the data: the next run reloads it.
"""

from __future__ import annotations

import json
import time
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

    def handle(self, *args, events: int, days: float, keep: int, runs: int, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_retention measures PostgreSQL: set DATABASE_URL=postgres://…")
        call_command("migrate", verbosity=0)
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
        started = time.perf_counter()
        plans = retention.prune(out=lines.append)
        took = time.perf_counter() - started
        removed = sum(p.events for p in plans)
        self.stdout.write(
            f"\nprune_events (retention {keep} days): {len(plans)} days, ~{removed:,} events removed in {took:.3f} s"
        )
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
