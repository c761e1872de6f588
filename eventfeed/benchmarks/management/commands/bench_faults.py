"""Faults under load, one line per scenario.

    python manage.py bench_faults [--outage 10] [--automation-outage 30] [--scenarios a,b] [--rss-events 1000000] [--rss-subscribers 100]

Starts its own PostgreSQL cluster and Redis on free ports (eventfeed/benchmarks/faultkit.py: nothing
shared is touched, DATABASE_URL and REDIS_URL are ignored) and two Daphne processes; stops
PostgreSQL, kills Daphne with -9, flushes and restarts Redis while producers send over HTTP and
/api/events/in (SDK-style checkpoints) and an SDK-style /api/events/out subscriber listens on the
other process. Prints for each: sent, acknowledged, stored, lost (acknowledged but not stored),
duplicated (stored twice), delivered live (distinct ids the subscriber got, live or by its
backfill after it was told), seconds from the service's return to the first live event sent
after it, peak RSS. The automation scenarios (auto+…) kill `run_automations` and the Daphne
process that evaluates in-process with -9, stop PostgreSQL (--automation-outage, 30 s) and
flush Redis while events an automation fires for arrive, and print: sent, stored, fired, action
runs (events stored by its emit-event action, calls its webhook action made), lost (stored
events never fired for, actions never done), duplicated (firings or actions done twice). Then the server's memory over the largest allowed request, and RSS over
many events pushed to many subscribers.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eventfeed.benchmarks import faultkit


class Command(BaseCommand):
    help = "Stop, flush and kill PostgreSQL, Redis and Daphne under load; count what was lost."

    def add_arguments(self, parser):
        parser.add_argument("--outage", type=float, default=10.0, help="seconds PostgreSQL stays down")
        parser.add_argument("--automation-outage", type=float, default=30.0,
                            help="seconds PostgreSQL stays down under the automation evaluator")
        parser.add_argument("--scenarios", default=",".join([*faultkit.SCENARIOS, *faultkit.AUTOMATION_SCENARIOS]),
                            help="comma-separated")
        parser.add_argument("--rss-events", type=int, default=1_000_000)
        parser.add_argument("--rss-subscribers", type=int, default=100)
        parser.add_argument("--no-memory", action="store_true", help="skip the largest-request measurement")

    def handle(self, *args, **options):
        problem = faultkit.services_available()
        if problem:
            raise CommandError(problem)
        names = [n for n in options["scenarios"].split(",") if n]
        known = [*faultkit.SCENARIOS, *faultkit.AUTOMATION_SCENARIOS]
        unknown = set(names) - set(known)
        if unknown:
            raise CommandError(f"unknown scenarios: {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        automation_names = [n for n in names if n in faultkit.AUTOMATION_SCENARIOS]
        if automation_names:
            # Its own lab: there the evaluator is a run_automations worker and one Daphne process.
            lab = faultkit.AutomationLab()
            try:
                for name in automation_names:
                    kwargs = {"outage": options["automation_outage"]} if name.endswith("postgres-down") else {}
                    self.stdout.write(faultkit.AUTOMATION_SCENARIOS[name](lab, **kwargs).line())
                    self.stdout.flush()
            finally:
                lab.close()
        names = [n for n in names if n not in faultkit.AUTOMATION_SCENARIOS]
        if not names and options["no_memory"] and not options["rss_events"]:
            return
        lab = faultkit.Lab(servers=2)
        try:
            for name in names:
                kwargs = {"outage": options["outage"]} if name.endswith("postgres-down") else {}
                self.stdout.write(faultkit.SCENARIOS[name](lab, **kwargs).line())
                self.stdout.flush()
            if not options["no_memory"]:
                memory = faultkit.largest_request(lab, settings.EVENTFEED_MAX_EVENT_BYTES, settings.EVENTFEED_MAX_REQUEST_BYTES)
                self.stdout.write(memory.line())
            if options["rss_events"]:
                self.stdout.write(faultkit.rss_flat(lab, options["rss_events"], options["rss_subscribers"]))
        finally:
            lab.close()
