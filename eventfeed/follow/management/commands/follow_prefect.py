"""Mirror one or more Prefect servers' events into Eventfeed, continuously."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eventfeed.events.problems import TimeRuleBroken, read_time
from eventfeed.follow.follower import Credentials, FollowError, api_base, follow_all


def credentials(key: str | None, auth_string: str | None) -> Credentials:
    return Credentials(key=key or settings.EVENTFEED_FOLLOW_PREFECT_KEY,
                       auth_string=auth_string or settings.EVENTFEED_FOLLOW_PREFECT_AUTH_STRING)


def urls_or_settings(urls: list[str] | None) -> list[str]:
    urls = urls or settings.EVENTFEED_FOLLOW_PREFECT_URLS
    try:
        return [api_base(url) for url in urls]
    except FollowError as e:
        raise CommandError(str(e)) from None


class Command(BaseCommand):
    help = (
        "Follow Prefect servers (OSS or Cloud): subscribe to each one's /api/events/out, store every event "
        "here (ids dedupe), remember the position, and backfill any gap after an interruption."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", action="append", dest="urls", metavar="URL",
                            help="a Prefect API URL, e.g. http://127.0.0.1:4200/api (repeatable; default: "
                                 "EVENTFEED_FOLLOW_PREFECT_URLS)")
        parser.add_argument("--key", help="a Prefect Cloud API key (default: EVENTFEED_FOLLOW_PREFECT_KEY)")
        parser.add_argument("--auth-string", help="a self-hosted server's PREFECT_SERVER_API_AUTH_STRING "
                                                  "(default: EVENTFEED_FOLLOW_PREFECT_AUTH_STRING)")
        parser.add_argument("--since", help="on the first run, mirror from this ISO time (default: 14 minutes ago)")

    def handle(self, *args, urls, key, auth_string, since, **options):
        urls = urls_or_settings(urls)
        if not urls:
            raise CommandError("Give --url URL (repeatable) or set EVENTFEED_FOLLOW_PREFECT_URLS.")
        first_since = None
        if since:
            try:
                first_since = read_time(since)
            except TimeRuleBroken as e:
                raise CommandError(f"--since {since!r} {e.rule}") from None
        self.stdout.write(f"Following {', '.join(urls)}; Ctrl-C to stop.")
        try:
            asyncio.run(follow_all(urls, credentials(key, auth_string), first_since=first_since))
        except KeyboardInterrupt:
            pass
