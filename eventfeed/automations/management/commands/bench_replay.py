"""Replay speed at scale (PostgreSQL): N stored events (benchdata's synthetic mix, loaded by COPY
once), then each trigger below replayed as a dry run over all of them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventfeed_replay python manage.py bench_replay
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from eventfeed.automations.replay import replay
from eventfeed.automations.triggers import parse_trigger
from eventfeed.benchmarks import benchdata
from eventfeed.events.filters import EventFilter
from eventfeed.events.models import Event

TRIGGERS = [
    ("every failed flow run (selective)",
     {"match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Failed"],
      "for_each": ["prefect.resource.id"]}),
    ("runs that stop beating (proactive, after/expect, for_each)",
     {"match": {"prefect.resource.id": "prefect.flow-run.*"}, "after": ["prefect.flow-run.Running"],
      "expect": ["prefect.flow-run.heartbeat", "prefect.flow-run.Completed"], "for_each": ["prefect.resource.id"],
      "posture": "Proactive", "within": 600}),
    ("a burst of any event on one work pool (every event read, related resources decoded)",
     {"match_related": {"prefect.resource.role": "work-pool", "prefect.resource.id": "prefect.work-pool.*"},
      "threshold": 5000, "within": 60}),
    ("any event at all, 1,000 within 10 s (every event through the core)",
     {"threshold": 1000, "within": 10}),
]


class Command(BaseCommand):
    help = "Time dry-run replays over N stored events."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--days", type=float, default=3)

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_replay measures PostgreSQL: set DATABASE_URL=postgres://…")
        call_command("migrate", verbosity=0)
        stored = Event.objects.count()
        if stored < options["events"] * 0.99:
            self.stdout.write(f"Loading {options['events']:,} events over {options['days']:g} days (COPY)…")
            benchdata.load(options["events"], options["days"], log=self.stdout.write)
            stored = Event.objects.count()
        self.stdout.write(f"{stored:,} events stored")
        for label, raw in TRIGGERS:
            trigger, _ = parse_trigger(raw)
            result = replay(trigger, EventFilter())
            self.stdout.write(
                f"{label}:\n    {result['events_read']:,} read, {result['matched']:,} matched, {result['fired']:,} fired "
                f"in {result['seconds']:.2f} s ({result['events_read'] / max(result['seconds'], 1e-9):,.0f} events/s read; "
                f"{stored / max(result['seconds'], 1e-9):,.0f} stored events/s)"
            )
