"""README screenshots: the feed, an event page and the automation form, light and dark, taken
from a throwaway demo site (eventfeed/events/demosite.py)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from eventfeed.events.demosite import chromium, demo_site, sign_in


class Command(BaseCommand):
    help = "Regenerate the README screenshots under static/screenshots/ (needs the test extra and chromium)."

    def add_arguments(self, parser):
        parser.add_argument("--out", default=str(Path(settings.BASE_DIR) / "static" / "screenshots"))

    def handle(self, *args, out, **options):
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        with demo_site() as url, chromium() as browser:
            for scheme in ("light", "dark"):
                page = sign_in(browser, url, viewport={"width": 1440, "height": 900}, color_scheme=scheme)
                page.goto(f"{url}/events/?range=24h")
                page.wait_for_selector("#histogram g.bar", state="attached")
                page.wait_for_selector("[data-live-status][data-state=live]")
                page.wait_for_selector("#facets [data-facets-box]")
                self.shot(page, folder / f"feed-{scheme}.png")
                # A failed flow run's page, as someone chasing a failure would open it.
                page.goto(f"{url}/events/?range=24h&event=prefect.flow-run.Failed&event=prefect.flow-run.Crashed")
                page.locator(".row .name").first.click()
                page.wait_for_selector("#payload-tree .jt")
                self.shot(page, folder / f"event-{scheme}.png")
                page.goto(url + page.locator("a[role=menuitem]", has_text="Automate").get_attribute("href"))
                page.wait_for_selector("#automation-form")
                page.wait_for_timeout(1500)  # the preview's first answer
                self.shot(page, folder / f"automation-{scheme}.png")
                page.context.close()

    def shot(self, page, path: Path) -> None:
        page.mouse.move(0, 0)
        page.screenshot(path=str(path))
        self.stdout.write(f"wrote {path.relative_to(settings.BASE_DIR) if path.is_relative_to(settings.BASE_DIR) else path}")
