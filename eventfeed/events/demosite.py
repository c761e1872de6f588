"""A throwaway Eventfeed with demo data, served by Daphne as production serves it and opened in
chromium: for the README screenshots (`screenshots`) and bench_feed's browser figure.

Its own SQLite file in a temporary folder, so nothing touches the configured database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from eventfeed.benchmarks.processes import free_port, wait_for
from eventfeed.events.management.commands.quickstart import LOCAL_HTTP

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "demo", "demo-password-1"


def _manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)


@contextmanager
def demo_site(events: int = 3000, days: float = 1):
    """Yield the base URL of a fresh site holding `events` demo events, user demo/demo-password-1."""
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DATABASE_READ_URL")}
        env.update(LOCAL_HTTP, DATABASE_URL=f"sqlite:///{folder}/site.sqlite3", SECRET_KEY="demo-site",
                   ALLOWED_HOSTS="127.0.0.1,localhost")
        _manage("migrate", "-v", "0", env=env)
        _manage("collectstatic", "--noinput", "-v", "0", env=env)
        _manage("demo_events", "--backfill", str(events), "--days", str(days), "--seed", "7", env=env)
        subprocess.run([sys.executable, "-c", (
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'eventfeed.settings'); django.setup();"
            "from django.contrib.auth import get_user_model;"
            f"get_user_model().objects.create_user({USER!r}, password={PASSWORD!r})")],
            env=env, check=True, cwd=settings.BASE_DIR)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port),
                                   "eventfeed.asgi:application"], env=env, cwd=settings.BASE_DIR)
        try:
            wait_for(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=15)


@contextmanager
def chromium():
    """Playwright's chromium (Debian's binary); a clear error when the test extra is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise CommandError("Playwright is not installed: pip install -e '.[test]'") from None
    if not os.path.exists(CHROMIUM):
        raise CommandError(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser, url: str, **context):
    """A new page signed in as the demo user."""
    page = browser.new_context(**context).new_page()
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(lambda u: "/accounts/login" not in u)
    return page
