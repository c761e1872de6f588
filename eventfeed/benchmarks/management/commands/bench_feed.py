"""Server-side time of the feed page, the filter API, the histograms and the event page at
benchmark scale (PostgreSQL, 2,000,000 events by default).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/eventfeed_bench python manage.py bench_feed

Times are measured in-process through Django's test client (middleware, session, view, queries,
template), median and p95 over --runs warm runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
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
from django.utils import timezone

from eventfeed.benchmarks import benchdata
from eventfeed.benchmarks.processes import free_port
from eventfeed.events.forms import cursor_for
from eventfeed.events.models import ApiKey, Event, EventCount


class Command(BaseCommand):
    help = "Load benchmark-scale events into PostgreSQL and time the feed's queries."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=2_000_000)
        parser.add_argument("--days", type=float, default=30)
        parser.add_argument("--runs", type=int, default=20)
        parser.add_argument("--reload", action="store_true", help="reload even if enough events are stored")
        parser.add_argument("--no-browser", action="store_true", help="skip the chromium first-paint measurement")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_feed measures PostgreSQL: set DATABASE_URL=postgres://…")
        call_command("migrate", verbosity=0)
        stored = Event.objects.count() if not options["reload"] else 0
        if stored and not EventCount.objects.exists():
            # Loaded by a version of benchdata that kept no counts: what reads the rollups would
            # be measured counting events.
            self.stdout.write("The stored events have no counts (EventCount): reloading.")
            stored = 0
        if stored < options["events"] * 0.99:
            self.stdout.write(f"Loading {options['events']:,} events over {options['days']:g} days (COPY)…")
            benchdata.load(options["events"], options["days"], log=self.stdout.write)
        else:
            self.stdout.write(f"Using the {stored:,} events already stored (--reload to regenerate).")
        setup_test_environment()
        user, _ = get_user_model().objects.get_or_create(username="bench")
        client = Client()
        client.force_login(user)
        _, key = ApiKey.create("bench")
        self.client, self.key, self.runs = client, key, options["runs"]

        newest = Event.objects.order_by("-occurred").values_list("occurred", flat=True).first()
        week_back = newest - timedelta(days=7)
        hour = {"since": week_back.isoformat(), "until": (week_back + timedelta(hours=1)).isoformat()}
        flow_run = "prefect.flow-run.fr-00042"
        pool = "prefect.work-pool.pool-0"
        rare_flow = "prefect.flow.flow-180"
        cases = [
            ("no filter", {}, {}),
            ("common event prefix", {"event": "prefect.flow-run.*"}, {"event": {"prefix": ["prefect.flow-run."]}}),
            ("rare event prefix", {"event": "prefect.runner.*"}, {"event": {"prefix": ["prefect.runner."]}}),
            ("exact resource id", {"resource": flow_run}, {"resource": {"id": [flow_run]}}),
            ("resource id prefix", {"resource": "prefect.worker.*"}, {"resource": {"id_prefix": ["prefect.worker."]}}),
            ("label condition", {"resource": "prefect.state-type=FAILED"},
             {"resource": {"labels": {"prefect.state-type": "FAILED"}}}),
            ("related resource, common", {"related": f"work-pool:{pool}"}, {"related": {"id": [pool], "role": ["work-pool"]}}),
            ("related resource, rare", {"related": f"flow:{rare_flow}"}, {"related": {"id": [rare_flow], "role": ["flow"]}}),
            ("rare name + common related", {"event": "prefect.flow-run.Crashed", "related": f"work-pool:{pool}"},
             {"event": {"name": ["prefect.flow-run.Crashed"]}, "related": {"id": [pool], "role": ["work-pool"]}}),
            ("free text", {"q": "timeout"}, {"text": {"query": "timeout"}}),
            ("1-hour window a week back", hour, {"occurred": hour}),
        ]
        self.stdout.write(f"\nServer-side time, ms (median / p95 over {self.runs} warm runs)")
        self.stdout.write(f"{'case':32} {'feed page':>16} {'/api/events/filter':>20}")
        for label, query, api_filter in cases:
            page = self.time_get("/events/?" + urlencode({"range": "30d", **query}))
            api = self.time_api({"filter": api_filter, "limit": 50})
            self.stdout.write(f"{label:32} {page:>16} {api:>20}")

        deep = self.cursor_100_pages_deep()
        page = self.time_get("/events/?" + urlencode({"range": "30d", "before": deep}))
        self.stdout.write(f"{'load older, 100 pages deep':32} {page:>16} {'':>20}")

        self.stdout.write("\nHistogram (GET /events/histogram), ms")
        for label, query in [
            ("24 h", {"range": "24h"}),
            ("7 d", {"range": "7d"}),
            ("24 h, event prefix", {"range": "24h", "event": "prefect.flow-run.*"}),
            ("7 d, event prefix", {"range": "7d", "event": "prefect.flow-run.*"}),
        ]:
            self.stdout.write(f"{label:32} {self.time_get('/events/histogram?' + urlencode(query)):>16}")

        # The feed's total is the histogram's (the sum of its buckets), exact or estimated; beside
        # each time, the total it gave and the exact count it stands for (counted once, untimed).
        self.stdout.write(f"\nTotal (GET /events/histogram), ms  {'total shown':>28} {'exact count':>12}")
        filter_cases = [
            ("30 d, no filter", {"range": "30d"}),
            ("30 d, event prefix", {"range": "30d", "event": "prefect.flow-run.*"}),
            ("30 d, label condition", {"range": "30d", "resource": "prefect.state-type=FAILED"}),
            ("30 d, related resource, common", {"range": "30d", "related": f"work-pool:{pool}"}),
            ("30 d, related resource, rare", {"range": "30d", "related": f"flow:{rare_flow}"}),
            ("30 d, excluded tag", {"range": "30d", "related": "!tag:prefect.tag.tag-0"}),
            ("24 h, free text", {"range": "24h", "q": "timeout"}),
        ]
        for label, query in filter_cases:
            timing = self.time_get("/events/histogram?" + urlencode(query))
            body = self.client.get("/events/histogram?" + urlencode(query)).json()
            shown = f"{'about ' if body['estimated'] else ''}{body['total']:,}"
            self.stdout.write(f"{label:32} {timing:>16} {shown:>16} {self.exact_count(query):>12,}")

        self.stdout.write("\nFacets (GET /events/facets), ms")
        for label, query in [("24 h, no filter", {"range": "24h"}), *filter_cases]:
            self.stdout.write(f"{label:32} {self.time_get('/events/facets?' + urlencode(query)):>16}")

        ids = list(Event.objects.order_by("?").values_list("id", flat=True)[: self.runs])
        samples = []
        for event_id in ids[:2] + ids:
            t = time.perf_counter()
            r = self.client.get(f"/events/{event_id}/")
            samples.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.status_code
        self.stdout.write(f"\nEvent page (/events/<id>/), ms   {fmt(samples[2:])}")

        if not options["no_browser"]:
            self.first_paint(user)

    def time_get(self, url: str) -> str:
        samples = []
        for i in range(self.runs + 2):
            t = time.perf_counter()
            r = self.client.get(url)
            samples.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise CommandError(f"{url} answered {r.status_code}")
        return fmt(samples[2:])

    def exact_count(self, query: dict) -> int:
        """What the total stands for, counted one by one (slow: not timed)."""
        from eventfeed.events.filtersets import FeedFilterSet
        from eventfeed.events.views import _bounded_filter

        form = FeedFilterSet(query)
        assert form.is_valid(), form.errors
        return _bounded_filter(form).count_queryset().values("pk").count()

    def time_api(self, body: dict) -> str:
        samples = []
        data = json.dumps(body)
        for i in range(self.runs + 2):
            t = time.perf_counter()
            r = self.client.post("/api/events/filter", data, content_type="application/json",
                                 HTTP_AUTHORIZATION=f"Bearer {self.key}")
            samples.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise CommandError(f"/api/events/filter answered {r.status_code}: {r.content[:200]}")
        return fmt(samples[2:])

    def cursor_100_pages_deep(self) -> str:
        """The cursor a user reaches after clicking "load older" 100 times (5,000 rows)."""
        since = timezone.now() - timedelta(days=30)
        event = Event.objects.filter(occurred__gte=since).order_by("-occurred", "-id")[5000]
        return cursor_for(event)

    def first_paint(self, user) -> None:
        """First contentful paint of /events/ in Debian's chromium, and the bytes one feed view
        transfers (page, scripts, styles, histogram, catch-up; compressed as sent), served by Daphne
        as production serves it (DEBUG off, collectstatic's hashed and compressed files)."""
        if not os.path.exists("/usr/bin/chromium"):
            self.stdout.write("\nFirst paint: skipped (no /usr/bin/chromium)")
            return
        from playwright.sync_api import sync_playwright

        from eventfeed.events.management.commands.quickstart import LOCAL_HTTP

        port = free_port()
        env = {**os.environ, **LOCAL_HTTP, "EVENTFEED_AUTOMATIONS_IN_PROCESS": "false",
               "SECRET_KEY": settings.SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1"}
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, check=True,
                       cwd=settings.BASE_DIR)
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "eventfeed.asgi:application"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    import urllib.request

                    urllib.request.urlopen(base + "/accounts/login/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
            cookie = self.client.cookies["sessionid"].value
            paints = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-sync", "--disable-quic"])
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
                page = context.new_page()
                transferred = []
                for _ in range(7):
                    page.goto(base + "/events/", wait_until="load")
                    page.wait_for_selector("[data-live-status][data-state=live]")
                    page.wait_for_timeout(1500)  # the histogram and the catch-up after the socket opens
                    transferred.append(page.evaluate(
                        "() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
                        ".reduce((n, e) => n + e.transferSize, 0)"))
                    # The paint entry can land after the load event on a busy machine.
                    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
                    fcp = page.evaluate("() => performance.getEntriesByName('first-contentful-paint')[0].startTime")
                    paints.append(fcp)
                browser.close()
            self.stdout.write(f"\nFirst contentful paint of /events/ in chromium, ms   {fmt(paints[2:])}")
            self.stdout.write(f"Bytes transferred per feed view, KB: first (empty cache) {transferred[0] / 1024:.1f}, "
                              f"later (cached static) median {statistics.median(transferred[2:]) / 1024:.1f}")
        finally:
            server.terminate()
            server.wait()


def fmt(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return f"{statistics.median(samples):6.1f} / {p95:6.1f}"
