"""One command from a fresh checkout to a running, populated Eventfeed.

The setup steps are plain functions (`prepare`) so tests can run them without starting servers.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from eventfeed import audit
from eventfeed.events import demo
from eventfeed.events.models import ApiKey, Event

ADMIN = "admin"
DEMO_KEY = "demo"
# The backfill has the live stream's density (30,000 a day is ~0.35/s, the stream's default
# rate), so the 24-hour histogram reads as one continuous day, not a flat line and a spike.
BACKFILL_EVENTS = 30_000
BACKFILL_DAYS = 1
STREAM_RATE = 0.35


@dataclass
class Prepared:
    username: str
    password: str | None  # None: the user existed already; its password is not known here
    key: str
    backfilled: int


def ensure_admin() -> tuple[str, str | None]:
    """Create `admin` with a generated password when there is no user at all."""
    users = get_user_model().objects
    if users.exists():
        existing = users.filter(username=ADMIN).first() or users.filter(is_superuser=True).first() or users.first()
        return existing.get_username(), None
    password = secrets.token_urlsafe(12)
    users.create_superuser(ADMIN, email="", password=password)
    return ADMIN, password


def fresh_demo_key() -> str:
    """A new `demo` key for the streamer. Keys are stored hashed, so an earlier one cannot be
    shown again; earlier demo keys are revoked rather than left to pile up unused."""
    with transaction.atomic():
        for earlier in ApiKey.objects.select_for_update().filter(name=DEMO_KEY, revoked__isnull=True):
            earlier.revoked = timezone.now()
            earlier.save(update_fields=["revoked"])
            audit.record("api-key.revoked", audit.key_resource(earlier), {"name": earlier.name})
        key, raw = ApiKey.create(DEMO_KEY)
        audit.record("api-key.created", audit.key_resource(key), {"name": key.name})
    return raw


def prepare(out=print, *, backfill: int = BACKFILL_EVENTS, days: float = BACKFILL_DAYS) -> Prepared:
    """Migrate, make sure there is a user, create the demo key, load demo events if empty."""
    out("Migrating the database…")
    call_command("migrate", interactive=False, verbosity=0)
    username, password = ensure_admin()
    # Asked before the key is made: its audit event is an event too.
    empty = not Event.objects.exists()
    key = fresh_demo_key()
    backfilled = 0
    if backfill and empty:
        out(f"Loading {backfill:,} demo events over the last {days:g} days…")
        started = time.monotonic()
        events = demo.backfill_events(backfill, days)
        backfilled, _ = demo.store_batches(
            events, progress=lambda done: out(f"  {done:,}/{len(events):,}") if done % 5000 == 0 else None
        )
        out(f"  stored {backfilled:,} events in {time.monotonic() - started:.1f}s")
    return Prepared(username, password, key, backfilled)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


SECRET_FILE = ".quickstart-secret-key"
# Production settings, less what needs HTTPS: plain HTTP on this machine, no redirect to HTTPS,
# no HSTS for localhost.
LOCAL_HTTP = {"DEBUG": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
              "SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "0"}


def production_env(host: str) -> dict[str, str]:
    """Settings that make the demo behave as production does (the app's own 404 and 500 pages,
    hashed and compressed static files) while still serving plain HTTP on this machine. The secret
    key is kept in a file so that sign-ins survive a restart."""
    path = Path(settings.BASE_DIR) / SECRET_FILE
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    hosts = {"localhost", "127.0.0.1", "[::1]", host}
    return {
        **LOCAL_HTTP,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or path.read_text().strip(),
        "ALLOWED_HOSTS": os.environ.get("ALLOWED_HOSTS") or ",".join(sorted(hosts)),
    }


def sample_curl(url: str, key: str) -> str:
    """A command a new user can paste as it is: the event is inline, not in a file."""
    event = ('{"id": "\'$(python3 -c "import uuid; print(uuid.uuid4())")\'", "occurred": "\'$(date -u +%Y-%m-%dT%H:%M:%SZ)\'", '
             '"event": "hello.world", "resource": {"prefect.resource.id": "hello.1"}}')
    return f"curl -X POST {url}api/events -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{event}'"


def children(host: str, port: int, key: str, *, stream: float, automations: bool,
             follow: list[str] = ()) -> list[tuple[str, list[str], dict]]:
    """(label, argv, extra env) of every process quickstart runs."""
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    py = sys.executable
    # -v 0: no access log, which the demo stream would fill with a line a second; errors still show.
    procs = [("server", [py, "-m", "daphne", "-v", "0", "-b", host, "-p", str(port), "eventfeed.asgi:application"], {})]
    if stream:
        # The key goes by environment, not argv, so it does not show in `ps`.
        procs.append(
            ("demo stream", [py, manage, "demo_events", "--stream", f"{stream:g}", "--url", f"http://{host}:{port}"],
             {"EVENTFEED_API_KEY": key})
        )
    if automations:
        procs.append(("automations", [py, manage, "run_automations"], {}))
    if follow:
        # Credentials come from EVENTFEED_FOLLOW_PREFECT_KEY / _AUTH_STRING in the environment.
        procs.append(("prefect follower", [py, manage, "follow_prefect", *[a for url in follow for a in ("--url", url)]], {}))
    return procs


def stop(processes: list[tuple[str, subprocess.Popen]], timeout: float = 10) -> None:
    for _, p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout
    for label, p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {label} did not stop in {timeout:g}s; killing it", file=sys.stderr)
            p.kill()
            p.wait()


class Command(BaseCommand):
    help = (
        "Set up and run Eventfeed for a demo: migrate, create the first user and a demo API key "
        "(printing both), load demo events if the store is empty, then serve on 127.0.0.1:PORT "
        "with demo events streaming in. Ctrl-C stops everything."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
        parser.add_argument("--no-stream", action="store_true", help="do not stream live demo events")
        parser.add_argument("--rate", type=float, default=STREAM_RATE,
                            help=f"demo events per second when streaming (default {STREAM_RATE:g}, the backfill's density)")
        parser.add_argument("--backfill", type=int, default=BACKFILL_EVENTS,
                            help=f"demo events to load into an empty store (default {BACKFILL_EVENTS:,}; 0: none)")
        parser.add_argument("--follow-prefect", action="append", default=[], metavar="URL",
                            help="also mirror this Prefect server's events (its API URL; repeatable)")

    def handle(self, *args, port, host, no_stream, rate, backfill, follow_prefect, **options):
        if not port_free(host, port):
            raise CommandError(f"{host}:{port} is already in use: stop what runs there or pass --port.")
        ready = prepare(self.stdout.write, backfill=backfill)
        env = production_env(host)
        self.stdout.write("Collecting static files…")
        subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "collectstatic", "--noinput", "-v", "0"],
                       env={**os.environ, **env}, check=True)
        automations = "run_automations" in get_commands()
        url = f"http://{'localhost' if host == '127.0.0.1' else host}:{port}/"

        # Ctrl-C reaches the children too (same process group); SIGTERM only reaches us. Both end
        # in stop(). SIGINT is set explicitly: a shell starting us in the background ignores it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        processes: list[tuple[str, subprocess.Popen]] = []
        try:
            for label, argv, extra in children(host, port, ready.key, stream=0 if no_stream else rate, automations=automations,
                                                 follow=follow_prefect):
                processes.append((label, subprocess.Popen(argv, env={**os.environ, **env, **extra})))
                if label == "server" and not wait_for_port(host, port, processes[0][1]):
                    raise CommandError("The server did not start; see its output above.")
            self.banner(ready, url, [label for label, _ in processes])
            while True:
                for label, p in processes:
                    if p.poll() is not None:
                        raise CommandError(f"The {label} process exited with status {p.returncode}; stopping.")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            stop(processes)
        self.stdout.write("Stopped.")

    def banner(self, ready: Prepared, url: str, running: list[str]) -> None:
        w = self.stdout.write
        w("")
        w(f"  Eventfeed is running at {url}")
        if ready.password:
            w(f"  Sign in as: {ready.username}   password: {ready.password}   (shown once; change it with "
              f"python manage.py changepassword {ready.username})")
        else:
            w(f"  Sign in as the existing user '{ready.username}' (forgot the password? "
              f"python manage.py changepassword {ready.username})")
        w(f"  API key '{DEMO_KEY}': {ready.key}")
        w(f"  Send an event:  {sample_curl(url, ready.key)}")
        w(f"  Running: {', '.join(running)}. Ctrl-C stops everything.")
        w("")
