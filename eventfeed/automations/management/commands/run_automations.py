"""A dedicated automation worker: evaluates events, ticks proactive triggers, runs actions."""

from __future__ import annotations

import asyncio
import os

from django.conf import settings
from django.core.management.base import BaseCommand

from eventfeed.automations import service, wakeup
from eventfeed.events import retention


class Command(BaseCommand):
    help = "Evaluate automations (events from the channel layer, proactive windows, action runs)."

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            # Normal on one machine, not an error: said calmly, on stdout.
            self.stdout.write(
                "Automations: the web process evaluates new events (no REDIS_URL); "
                "this worker ticks proactive triggers and runs actions."
            )
        worker = service.Service(consume=bool(settings.REDIS_URL))
        service._running[os.getpid()] = worker
        wakeup.register(worker.wake_actions)
        loops = [worker.run()]
        if settings.EVENTFEED_FOLLOW_PREFECT_URLS:
            # The worker also mirrors the Prefect servers named in the settings (follow_prefect).
            from eventfeed.follow.management.commands.follow_prefect import credentials, urls_or_settings
            from eventfeed.follow.follower import follow_all

            urls = urls_or_settings(None)
            loops.append(follow_all(urls, credentials(None, None)))
            self.stdout.write(f"Following {', '.join(urls)}.")
        self.stdout.write("Evaluating automations; Ctrl-C to stop.")
        try:
            asyncio.run(self.run(loops))
        except KeyboardInterrupt:
            pass

    async def run(self, loops) -> None:
        await asyncio.gather(*loops, retention.prune_forever())
