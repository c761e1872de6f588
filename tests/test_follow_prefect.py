"""follow_prefect against a real Prefect server, started by this module (`prefect server start`
on a free port, its own PREFECT_HOME and SQLite file), with real `@flow` runs: every flow-run and
task-run event its server stores must arrive here, across a restart of either side."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from eventfeed.events.models import Event
from eventfeed.follow.follower import Follower
from eventfeed.follow.models import FollowedServer
from tests.prefect_sdk import require_prefect, run_python, sdk_env

require_prefect()

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """`prefect server start` in its own process group, restartable on the same port and data."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict:
        return sdk_env(self.home, PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{self.home / 'prefect.db'}",
                       PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")

    def start(self) -> None:
        prefect = Path(sys.executable).with_name("prefect")
        self.log = open(self.home / "server.log", "ab")
        self.process = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env(), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(self.home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("prefect server did not start in 90 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def run_flow(self, tmp_path: Path) -> str:
        """A real flow with a task; returns the flow run's id."""
        result = run_python(FLOW, sdk_env(tmp_path / "client-home", PREFECT_API_URL=self.url))
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def event_ids(self, flow_run_id: str) -> set[str]:
        """Every event Prefect stored about the run (its task runs name it as a related resource),
        once the run's Completed event is among them: Prefect persists in batches."""
        body = {"filter": {"any_resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}, "order": "ASC"}, "limit": 50}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            page = httpx.post(f"{self.url}/events/filter", json=body, timeout=10).json()
            events = list(page["events"])
            while page.get("next_page"):
                page = httpx.get(page["next_page"], timeout=10).json()
                events += page["events"]
            names = {e["event"] for e in events}
            if {"prefect.flow-run.Completed", "prefect.task-run.Completed"} <= names:
                return {e["id"] for e in events}
            time.sleep(0.5)
        raise AssertionError(f"Prefect never stored the run's Completed events: {names}")


FLOW = """
from prefect import flow, task
from prefect.runtime import flow_run

@task
def add(a, b):
    return a + b

@flow
def nightly():
    add(1, 2)
    return flow_run.id

print(nightly())
"""


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    server = PrefectServer(tmp_path_factory.mktemp("prefect-server"))
    server.start()
    yield server
    server.stop()


class Running:
    """A follower on its own thread and event loop, as the command runs it; stop() cancels it."""

    def __init__(self, follower: Follower):
        self.loop = asyncio.new_event_loop()
        self.task = None
        self.thread = threading.Thread(target=self._run, args=(follower,), daemon=True)
        self.thread.start()

    def _run(self, follower: Follower) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(follower.run())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        finally:
            self.loop.close()

    def stop(self) -> None:
        while self.task is None:
            time.sleep(0.01)
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(timeout=60)
        if self.thread.is_alive():
            import io

            stack = io.StringIO()
            self.task.print_stack(file=stack)
            raise AssertionError(f"the follower did not stop within 60 s:\n{stack.getvalue()}")


# Generous: the machine these run on is shared and often loaded.
def wait_until(condition, timeout: float = 60, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stored(ids: set[str]) -> set[str]:
    return {str(i) for i in Event.objects.filter(id__in=ids).values_list("id", flat=True)}


def connected(url: str) -> bool:
    return FollowedServer.objects.filter(url=url, connected=True).exists()


def test_it_mirrors_every_event_of_a_flow_run(prefect_server, tmp_path, owner_client):
    follower = Running(Follower(prefect_server.url))
    try:
        wait_until(lambda: connected(prefect_server.url), what="the follower to connect")
        run_id = prefect_server.run_flow(tmp_path)
        expected = prefect_server.event_ids(run_id)
        wait_until(lambda: stored(expected) == expected, what="every event of the run")
    finally:
        follower.stop()
    names = set(Event.objects.filter(id__in=expected).values_list("event", flat=True))
    assert {"prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.Completed",
            "prefect.task-run.Running", "prefect.task-run.Completed"} <= names
    server = FollowedServer.objects.get(url=prefect_server.url)
    assert server.connected is False and server.position is not None and server.events_stored >= len(expected)
    assert server.lag_seconds is not None and server.last_event_at is not None
    assert Event.objects.filter(event="eventfeed.follow.connected").exists()
    page = owner_client.get("/settings/ingest-problems/").content.decode()
    assert "Followed Prefect servers" in page and prefect_server.url in page and str(server.last_event_id) in page


def test_it_backfills_what_happened_while_it_was_stopped(prefect_server, tmp_path):
    follower = Running(Follower(prefect_server.url))
    wait_until(lambda: connected(prefect_server.url), what="the follower to connect")
    first = prefect_server.event_ids(prefect_server.run_flow(tmp_path))
    wait_until(lambda: stored(first) == first, what="the first run")
    follower.stop()

    while_away = prefect_server.event_ids(prefect_server.run_flow(tmp_path))
    assert not stored(while_away)
    follower = Running(Follower(prefect_server.url))
    try:
        wait_until(lambda: stored(while_away) == while_away, what="the run that happened while it was stopped")
    finally:
        follower.stop()


def test_it_pages_through_the_filter_api_beyond_the_sockets_reach(prefect_server, tmp_path):
    run = prefect_server.event_ids(prefect_server.run_flow(tmp_path))
    # As if it had been away longer than Prefect's 15-minute socket backfill: the first run
    # reads everything since the position through /events/filter and /filter/next.
    FollowedServer.objects.create(url=prefect_server.url, position=timezone.now() - timedelta(hours=1))
    follower = Running(Follower(prefect_server.url, rest_after=timedelta(0)))
    try:
        wait_until(lambda: Event.objects.filter(event="eventfeed.follow.backfilled").exists(), what="the backfill")
        backfill = Event.objects.get(event="eventfeed.follow.backfilled")
        assert stored(run) == run
        assert backfill.payload["events"] >= len(run) and backfill.payload["pages"] >= 1
    finally:
        follower.stop()


def test_it_reconnects_after_the_prefect_server_restarts(prefect_server, tmp_path):
    # A restarted Prefect server may take the subscription before its event stream runs, and then
    # feed it nothing: the follower's audit notices the missing events and reconnects.
    follower = Running(Follower(prefect_server.url, audit_every=5))
    try:
        wait_until(lambda: connected(prefect_server.url), what="the follower to connect")
        prefect_server.stop()
        wait_until(lambda: not connected(prefect_server.url), what="the follower to notice")
        assert FollowedServer.objects.get(url=prefect_server.url).last_error
        prefect_server.start()
        run = prefect_server.event_ids(prefect_server.run_flow(tmp_path))
        wait_until(lambda: stored(run) == run, timeout=120, what="the run after the restart")
    finally:
        follower.stop()
    assert Event.objects.filter(event="eventfeed.follow.disconnected").exists()
    assert Event.objects.filter(event="eventfeed.follow.connected").count() >= 2


def test_it_records_why_it_cannot_connect(db):
    url = f"http://127.0.0.1:{free_port()}/api"
    follower = Running(Follower(url))
    try:
        wait_until(lambda: FollowedServer.objects.filter(url=url).exclude(last_error="").exists(), what="the error")
    finally:
        follower.stop()
    server = FollowedServer.objects.get(url=url)
    assert server.connected is False and "Connect" in server.last_error


@pytest.mark.parametrize("args,message", [
    ([], "--url"),
    (["--url", "ftp://prefect.example.com"], "not an http"),
    (["--url", "http://admin:hunter2@prefect.example.com/api"], "has credentials in it: give them with --auth-string"),
    (["--url", "http://127.0.0.1:4200/api", "--since", "yesterday"], "--since"),
    (["--url", "http://127.0.0.1:4200/api", "--since", "2026-12-01T00:00:00"], "time zone"),
])
def test_it_refuses_bad_command_input_by_name(db, settings, args, message):
    settings.EVENTFEED_FOLLOW_PREFECT_URLS = []
    with pytest.raises(CommandError, match=message):
        call_command("follow_prefect", *args)
