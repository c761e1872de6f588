"""Faults on demand, for the fault suite (tests/test_faults_*.py) and `manage.py bench_faults`.

A private PostgreSQL cluster (initdb into a temporary folder, on a free port, as the `postgres`
user when run as root) and a private Redis on a free port, so that they can be stopped, flushed
and killed without touching anybody's shared services; Daphne processes serving the project on
them; producers and subscribers that speak the project's doors as real clients do; and the
scenarios that put them together and count what was sent, acknowledged, stored, lost, duplicated
and delivered live.

Every loop here is bounded in count and time, and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from django.core.management.base import CommandError

from eventfeed.benchmarks.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return wait_for(port)
        except CommandError:
            if time.monotonic() > deadline:
                raise


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def services_available() -> str | None:
    """Why the private services cannot be started here, or None."""
    for tool in ("initdb", "pg_ctl", "redis-server"):
        if not shutil.which(tool) and not _pg_bin(tool):
            return f"{tool} is not installed"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "runuser is missing (initdb refuses root)"
    return None


def _pg_bin(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/" + tool))
    return str(versions[-1]) if versions else None


class PrivatePostgres:
    """A throw-away cluster. fsync is off: a stop (even `immediate`) loses nothing the server
    committed, since the operating system keeps the writes; only a machine crash would."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="eventfeed-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_postgres, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients see it: every connection is cut at once."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "eventfeed") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str = "eventfeed") -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, sql: str, params=None, database: str = "eventfeed"):
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """No persistence: a restart comes back empty, as Redis without a disk does."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def flush(self) -> None:
        import redis

        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.kill()


def project_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="eventfeed.settings", DATABASE_URL=database_url, REDIS_URL=redis_url,
        DEBUG="false", SECRET_KEY="fault-suite-" + uuid.uuid4().hex, ALLOWED_HOSTS="127.0.0.1,localhost",
        # While the database is away a request waits this long for a connection, then gets 503.
        DATABASE_POOL_TIMEOUT="3", LOG_LEVEL="ERROR", PYTHONUNBUFFERED="1",
        # Plain HTTP on the loopback: no redirect to https.
        SECURE_SSL_REDIRECT="false",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT,
                          check=True, capture_output=True, text=True)
    return done.stdout


class Server:
    """One Daphne process serving the project."""

    def __init__(self, env: dict[str, str], name: str = "daphne"):
        self.env = env
        self.name = name
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.peak_rss = 0.0
        self.log = tempfile.TemporaryFile()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "eventfeed.asgi:application"],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sample_rss(self) -> float:
        if self.process is not None:
            self.peak_rss = max(self.peak_rss, rss_mb(self.process.pid, "VmHWM"))
        return self.peak_rss

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no close frame."""
        if self.process is not None:
            self.sample_rss()
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.sample_rss()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")


class Worker:
    """`manage.py run_automations`."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "run_automations"], env=self.env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    stop = kill


class Lab:
    """A private PostgreSQL and Redis, the project migrated on them, an API key, and servers."""

    def __init__(self, servers: int = 2, **env_extra: str):
        self.postgres = PrivatePostgres()
        self.redis = PrivateRedis()
        self.servers: list[Server] = []
        try:
            self.postgres.start()
            self.redis.start()
            self.env = project_env(self.postgres.create_database(), self.redis.url, **env_extra)
            manage(self.env, "migrate", "--noinput")
            self.key = manage(self.env, "create_api_key", "faults").strip()
            for i in range(servers):
                server = Server(self.env, f"daphne-{i}")
                server.start()
                self.servers.append(server)
        except BaseException:
            self.close()
            raise

    def stored(self, ids: set[str]) -> int:
        if not ids:
            return 0
        return self.postgres.query("SELECT count(*) FROM events_event WHERE id = ANY(%s::uuid[])", [list(ids)])[0][0]

    def stored_rows(self, prefix: str) -> tuple[int, int]:
        """(event rows, distinct ids) of the events whose name starts with prefix."""
        return tuple(self.postgres.query(
            "SELECT count(*), count(DISTINCT id) FROM events_event WHERE event LIKE %s", [prefix + "%"])[0])

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.redis.close()
        self.postgres.close()


# --- clients ------------------------------------------------------------------------------------


def make_event(name: str, **payload) -> dict:
    return {
        "id": str(uuid.uuid4()), "occurred": datetime.now(timezone.utc).isoformat(), "event": name,
        "resource": {"prefect.resource.id": f"{name}.resource"}, "related": [],
        "payload": {"sent_at": time.time(), **payload},
    }


def post(base: str, key: str, events: list[dict], timeout: float = 30) -> tuple[int, dict, dict]:
    """(status, JSON body, headers); status 0 when the server could not be reached."""
    request = urllib.request.Request(base + "/api/events", json.dumps(events).encode(),
                                     {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"not_json": body[:200].decode("utf-8", "replace")}
        return e.code, parsed, dict(e.headers)
    except (OSError, urllib.error.URLError):
        return 0, {}, {}


@dataclass
class Tally:
    """What one scenario counted."""

    scenario: str
    sent: set = field(default_factory=set)
    acknowledged: set = field(default_factory=set)
    stored: int = 0
    stored_rows: int = 0
    delivered: dict = field(default_factory=dict)  # id -> times received live
    answers: dict = field(default_factory=dict)  # status -> count
    closes: list = field(default_factory=list)  # (code, reason) seen by subscribers
    not_json: int = 0
    odd_answers: list = field(default_factory=list)  # (status, body) of answers that were not JSON
    resumed_seconds: float | None = None
    peak_rss: float = 0.0
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return len(self.acknowledged) - self.stored_acknowledged

    stored_acknowledged: int = 0

    @property
    def duplicated(self) -> int:
        return self.stored_rows - self.stored

    @property
    def delivered_live(self) -> int:
        return len(self.delivered)

    def line(self) -> str:
        resumed = "-" if self.resumed_seconds is None else f"{self.resumed_seconds:.1f}"
        return (f"{self.scenario:<28} sent {len(self.sent):>6}  acknowledged {len(self.acknowledged):>6}  stored {self.stored:>6}  "
                f"lost {self.lost:>3}  duplicated {self.duplicated:>3}  delivered live {self.delivered_live:>6}  "
                f"live resumed after {resumed:>5} s  peak RSS {self.peak_rss:>5.0f} MB")


class HttpProducer(threading.Thread):
    """Posts batches as a careful producer does: the same batch again, with the same ids, until it
    is answered 200 (after Retry-After on a 503, at once after a dropped connection)."""

    def __init__(self, lab: Lab, tally: Tally, name: str, *, server: int = 0, batch: int = 20, pause: float = 0.02,
                 max_seconds: float = 120):
        super().__init__(daemon=True)
        self.lab, self.tally, self.name_prefix, self.server = lab, tally, name, server
        self.batch, self.pause, self.max_seconds = batch, pause, max_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            events = [make_event(self.name_prefix) for _ in range(self.batch)]
            self.tally.sent.update(e["id"] for e in events)
            while time.monotonic() < deadline:
                status, body, headers = post(self.lab.servers[self.server].url, self.lab.key, events, timeout=20)
                self.tally.answers[status] = self.tally.answers.get(status, 0) + 1
                if status and "not_json" in body:
                    self.tally.not_json += 1
                    self.tally.odd_answers.append((status, body["not_json"]))
                if status == 200:
                    self.tally.acknowledged.update(e["id"] for e in events)
                    break
                wait = min(float(headers.get("Retry-After", 0.5) or 0.5), 1.0) if status == 503 else 0.2
                time.sleep(wait)
            time.sleep(self.pause)

    def finish(self) -> None:
        self.stopping.set()
        self.join(self.max_seconds + 30)


async def ws_producer(lab: Lab, tally: Tally, name: str, stop: asyncio.Event, *, server: int = 0, checkpoint_every: int = 50,
                      max_seconds: float = 120) -> None:
    """What the Prefect SDK's events client does: one frame per event, a ping every
    `checkpoint_every` events; events before a pong are confirmed, the others are kept and sent
    again after a reconnect."""
    import websockets

    unconfirmed: list[dict] = []
    deadline = time.monotonic() + max_seconds
    url = lab.servers[server].url.replace("http", "ws") + "/api/events/in"
    while time.monotonic() < deadline:
        try:
            async with websockets.connect(url, subprotocols=["prefect"], open_timeout=5, ping_interval=None) as ws:
                await ws.send(json.dumps({"type": "auth", "token": lab.key}))
                await asyncio.wait_for(ws.recv(), 10)
                for event in unconfirmed:
                    await ws.send(json.dumps(event))
                while True:
                    finishing = stop.is_set() or time.monotonic() > deadline
                    if not finishing:
                        for _ in range(checkpoint_every):
                            event = make_event(name)
                            tally.sent.add(event["id"])
                            unconfirmed.append(event)
                            await ws.send(json.dumps(event))
                    pong = await ws.ping()
                    await asyncio.wait_for(pong, 60)
                    tally.acknowledged.update(e["id"] for e in unconfirmed)
                    unconfirmed.clear()
                    if finishing:
                        return
                    await asyncio.sleep(0.02)
        except (OSError, asyncio.TimeoutError, websockets.ConnectionClosed, websockets.InvalidHandshake) as e:
            if isinstance(e, websockets.ConnectionClosed) and e.rcvd is not None:
                tally.closes.append((e.rcvd.code, e.rcvd.reason))
            await asyncio.sleep(0.5)


async def out_subscriber(lab: Lab, tally: Tally, prefix: str, stop: asyncio.Event, fault_over: list, *, server: int = 1,
                         max_seconds: float = 150) -> None:
    """What the Prefect SDK's subscriber does: a filter with a since, and on a close, the same
    filter again with a backfill; events are counted by id (a backfill repeats some)."""
    import websockets

    since = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    deadline = time.monotonic() + max_seconds
    first = True
    url = lab.servers[server].url.replace("http", "ws") + "/api/events/out"
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            async with websockets.connect(url, subprotocols=["prefect"], open_timeout=5, max_size=None) as ws:
                await ws.send(json.dumps({"type": "auth", "token": lab.key}))
                await asyncio.wait_for(ws.recv(), 10)
                await ws.send(json.dumps({"type": "filter", "filter": {"event": {"prefix": [prefix]}, "occurred": {"since": since}},
                                          "backfill": not first}))
                first = False
                while not stop.is_set():
                    try:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except asyncio.TimeoutError:
                        continue
                    if message.get("type") != "event":
                        continue
                    event = message["event"]
                    tally.delivered[event["id"]] = tally.delivered.get(event["id"], 0) + 1
                    if fault_over and tally.resumed_seconds is None and event["payload"].get("sent_at", 0) > fault_over[0]:
                        tally.resumed_seconds = time.time() - fault_over[0]
        except (OSError, asyncio.TimeoutError, websockets.ConnectionClosed, websockets.InvalidHandshake) as e:
            if isinstance(e, websockets.ConnectionClosed) and e.rcvd is not None:
                tally.closes.append((e.rcvd.code, e.rcvd.reason))
            await asyncio.sleep(0.3)


def settle(lab: Lab, tally: Tally, prefix: str, timeout: float = 30) -> None:
    """Count what was stored, once stores and deliveries have had time to finish."""
    deadline = time.monotonic() + timeout
    while True:
        tally.stored_acknowledged = lab.stored(tally.acknowledged)
        rows, distinct = lab.stored_rows(prefix)
        tally.stored, tally.stored_rows = distinct, rows
        if (tally.stored_acknowledged == len(tally.acknowledged) and tally.delivered_live >= tally.stored) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    tally.peak_rss = max(s.sample_rss() for s in lab.servers)


# --- scenarios -----------------------------------------------------------------------------------

SCENARIOS: dict[str, callable] = {}
# How long after a fault production goes on waiting for live delivery to resume.
RESUME_WAIT = 30.0


def _run(lab: Lab, name: str, fault, *, door: str = "http", warm: float = 2.0, after: float = 5.0) -> Tally:
    """Produce through `door` to server 0 while a subscriber listens on server 1; `fault()` runs
    after `warm` seconds and returns when the service is back; production goes on `after` more."""
    tally = Tally(name)
    prefix = f"fault.{name.replace('+', '.').replace('-', '.')}.{uuid.uuid4().hex[:6]}"
    started = time.monotonic()

    async def main() -> None:
        stop_sub, stop_prod, fault_over = asyncio.Event(), asyncio.Event(), []
        subscriber = asyncio.ensure_future(out_subscriber(lab, tally, prefix, stop_sub, fault_over))
        await asyncio.sleep(1.0)
        if door == "http":
            producer = HttpProducer(lab, tally, prefix)
            producer.start()
        else:
            producing = asyncio.ensure_future(ws_producer(lab, tally, prefix, stop_prod))
        await asyncio.sleep(warm)
        await asyncio.to_thread(fault)
        fault_over.append(time.time())
        await asyncio.sleep(after)
        # Production goes on until an event sent after the fault reached the subscriber (the
        # figure "live resumed after"): a door that holds its socket until the database is back
        # may take longer than `after` to take new events at all.
        while tally.resumed_seconds is None and time.time() - fault_over[0] < RESUME_WAIT:
            await asyncio.sleep(0.2)
        if door == "http":
            await asyncio.to_thread(producer.finish)
        else:
            stop_prod.set()
            await asyncio.wait_for(producing, 120)
        await asyncio.to_thread(settle, lab, tally, prefix)
        stop_sub.set()
        await asyncio.wait_for(subscriber, 30)

    asyncio.run(main())
    tally.seconds = time.monotonic() - started
    return tally


def postgres_outage(lab: Lab, seconds: float):
    def fault():
        lab.postgres.stop("immediate")
        time.sleep(seconds)
        lab.postgres.start()

    return fault


def daphne_killed(lab: Lab):
    def fault():
        lab.servers[0].kill()
        lab.servers[0].start()

    return fault


def redis_restarted(lab: Lab, seconds: float):
    def fault():
        lab.redis.kill()
        time.sleep(seconds)
        lab.redis.start()

    return fault


for _door in ("http", "ws"):
    SCENARIOS[f"{_door}+postgres-down"] = lambda lab, outage=5.0, door=_door: _run(
        lab, f"{door}+postgres-down", postgres_outage(lab, outage), door=door)
    SCENARIOS[f"{_door}+daphne-killed"] = lambda lab, door=_door: _run(lab, f"{door}+daphne-killed", daphne_killed(lab), door=door)
SCENARIOS["http+redis-flushed"] = lambda lab: _run(lab, "http+redis-flushed", lab.redis.flush)
SCENARIOS["http+redis-restarted"] = lambda lab, outage=3.0: _run(lab, "http+redis-restarted", redis_restarted(lab, outage))


# --- automations -------------------------------------------------------------------------------


class Recorder:
    """An HTTP server on the loopback that counts the webhook calls it gets, by the body."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        calls: dict[str, int] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with lock:
                    calls[body] = calls.get(body, 0) + 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.calls = calls
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AutomationLab(Lab):
    """The Lab for the evaluator: server 0 takes the events and evaluates nothing, server 1
    evaluates in its process (EVENTFEED_AUTOMATIONS_IN_PROCESS, the default), and a
    `run_automations` worker evaluates too; a webhook recorder counts what the actions call."""

    def __init__(self):
        self.recorder = Recorder()
        self.worker: Worker | None = None
        try:
            super().__init__(servers=0, EVENTFEED_OUTBOUND_ALLOW="127.0.0.1", EVENTFEED_AUTOMATIONS_IN_PROCESS="false")
            self.servers.append(Server(self.env, "daphne-0"))
            self.servers.append(Server(dict(self.env, EVENTFEED_AUTOMATIONS_IN_PROCESS="true"), "daphne-1-evaluating"))
            for server in self.servers:
                server.start()
            self.worker = Worker(self.env)
            self.worker.start()
        except BaseException:
            self.close()
            raise

    def create_automation(self, name: str) -> str:
        """Fires for every event named `name`; its actions store an event naming the triggering
        one (in the database: exactly once) and call the recorder with its id (at least once)."""
        body = {
            "name": name,
            "trigger": {"type": "event", "posture": "Reactive", "expect": [name], "threshold": 1, "within": 0},
            "actions": [
                {"type": "emit-event", "event": f"{name}.done", "resource": {"prefect.resource.id": "fault.done.{{ event.id }}"}},
                {"type": "call-webhook", "url": self.recorder.url, "payload": "{{ event.id }}", "timeout": 5},
            ],
        }
        request = urllib.request.Request(self.servers[0].url + "/api/automations/", json.dumps(body).encode(),
                                         {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["id"]

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
        self.recorder.close()
        super().close()


@dataclass
class AutomationTally:
    scenario: str
    sent: set = field(default_factory=set)
    acknowledged: set = field(default_factory=set)
    stored: int = 0
    fired: int = 0  # firings recorded
    fired_events: int = 0  # distinct triggering events among them
    missed: int = 0  # stored events of the trigger's name without a firing
    runs: int = 0  # action runs recorded
    unfinished: int = 0  # action runs not succeeded at the end
    emitted: int = 0  # emit-event actions done (events stored)
    emitted_distinct: int = 0
    calls: int = 0  # webhook calls received
    calls_distinct: int = 0
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        """Stored events never fired for, and fired ones whose actions never happened."""
        return self.missed + (self.fired_events - self.emitted_distinct) + (self.fired_events - self.calls_distinct)

    @property
    def duplicated(self) -> int:
        """Firings, emitted events and webhook calls beyond one per triggering event."""
        return (self.fired - self.fired_events) + (self.emitted - self.emitted_distinct) + (self.calls - self.calls_distinct)

    @property
    def duplicated_in_database(self) -> int:
        return (self.fired - self.fired_events) + (self.emitted - self.emitted_distinct)

    def line(self) -> str:
        return (f"{self.scenario:<28} sent {len(self.sent):>6}  stored {self.stored:>6}  fired {self.fired:>6}  "
                f"action runs {self.runs:>6} (emit-event {self.emitted:>6}, webhook calls {self.calls:>6})  "
                f"lost {self.lost:>3}  duplicated {self.duplicated:>3} (of which webhook calls made again, at least "
                f"once: {self.calls - self.calls_distinct})  in {self.seconds:.0f} s")


def count_automation(lab: AutomationLab, tally: AutomationTally, name: str, automation_id: str) -> None:
    q = lab.postgres.query
    tally.stored = q("SELECT count(DISTINCT id) FROM events_event WHERE event = %s", [name])[0][0]
    tally.fired, tally.fired_events = q(
        "SELECT count(*), count(DISTINCT triggering_event_id) FROM automations_firing WHERE automation_id = %s AND kind = 'triggered'",
        [automation_id])[0]
    tally.missed = q(
        "SELECT count(DISTINCT e.id) FROM events_event e WHERE e.event = %s AND NOT EXISTS "
        "(SELECT 1 FROM automations_firing f WHERE f.triggering_event_id = e.id AND f.automation_id = %s)",
        [name, automation_id])[0][0]
    tally.runs, tally.unfinished = q(
        "SELECT count(*), count(*) FILTER (WHERE status <> 'succeeded') FROM automations_actionrun WHERE automation_id = %s",
        [automation_id])[0]
    tally.emitted, tally.emitted_distinct = q(
        "SELECT count(*), count(DISTINCT resource_id) FROM events_event WHERE event = %s", [name + ".done"])[0]
    prefix_calls = dict(lab.recorder.calls)
    # The recorder serves every scenario: this one's calls are its stored events' ids.
    ids = {str(row[0]) for row in q("SELECT DISTINCT id FROM events_event WHERE event = %s", [name])}
    tally.calls = sum(n for body, n in prefix_calls.items() if body in ids)
    tally.calls_distinct = sum(1 for body in prefix_calls if body in ids)


def run_automation(lab: AutomationLab, scenario: str, fault, *, warm: float = 3.0, after: float = 5.0,
                   settle_seconds: float = 120) -> AutomationTally:
    """An HTTP producer sends events that an automation fires for, `fault()` runs after `warm`
    seconds; once production stops, every firing and action has `settle_seconds` to happen."""
    tally = AutomationTally(scenario)
    name = f"fault.auto.{scenario.replace('+', '.').replace('-', '.')}.{uuid.uuid4().hex[:6]}"
    automation_id = lab.create_automation(name)
    started = time.monotonic()
    producer_tally = Tally(scenario)
    producer = HttpProducer(lab, producer_tally, name, batch=5, pause=0.15)
    producer.start()
    time.sleep(warm)
    fault()
    time.sleep(after)
    producer.finish()
    tally.sent, tally.acknowledged = producer_tally.sent, producer_tally.acknowledged
    deadline = time.monotonic() + settle_seconds
    while True:
        count_automation(lab, tally, name, automation_id)
        done = tally.stored and tally.missed == 0 and tally.unfinished == 0 and tally.calls_distinct >= tally.fired_events
        if done or time.monotonic() > deadline:
            break
        time.sleep(1)
    tally.seconds = time.monotonic() - started
    return tally


def worker_killed(lab: AutomationLab, seconds: float = 5.0):
    def fault():
        lab.worker.kill()
        time.sleep(seconds)
        lab.worker.start()

    return fault


def evaluating_daphne_killed(lab: AutomationLab):
    def fault():
        lab.servers[1].kill()
        lab.servers[1].start()

    return fault


AUTOMATION_SCENARIOS: dict[str, callable] = {
    "auto+worker-killed": lambda lab: run_automation(lab, "auto+worker-killed", worker_killed(lab)),
    "auto+daphne-killed": lambda lab: run_automation(lab, "auto+daphne-killed", evaluating_daphne_killed(lab)),
    "auto+postgres-down": lambda lab, outage=30.0: run_automation(lab, "auto+postgres-down", postgres_outage(lab, outage)),
    "auto+redis-flushed": lambda lab: run_automation(lab, "auto+redis-flushed", lab.redis.flush),
}


# --- memory --------------------------------------------------------------------------------------


@dataclass
class Memory:
    body_bytes: int
    before_mb: float
    peak_mb: float
    after_mb: float

    def line(self) -> str:
        body = self.body_bytes / 1e6
        return (f"{'largest request x3':<28} body {body:.1f} MB  RSS before {self.before_mb:.0f} MB  peak {self.peak_mb:.0f} MB "
                f"(+{self.peak_mb - self.before_mb:.0f} MB = {(self.peak_mb - self.before_mb) / body:.1f}x the body)  "
                f"after {self.after_mb:.0f} MB (+{self.after_mb - self.before_mb:.0f} MB)")


def largest_request(lab: Lab, event_bytes: int, request_bytes: int, times: int = 3) -> Memory:
    """POST requests as large as allowed, made of events as large as allowed, to a fresh server;
    its RSS before, at peak (VmHWM) and after."""
    server = Server(lab.env, "daphne-memory")
    server.start()
    try:
        post(server.url, lab.key, [make_event("fault.memory.warm")])
        time.sleep(1)
        before = rss_mb(server.process.pid)
        pad = "x" * (event_bytes - 600)
        per_request = max(1, request_bytes // event_bytes)
        body = 0
        for _ in range(times):
            events = [make_event("fault.memory.big", pad=pad) for _ in range(per_request)]
            status, answer, _ = post(server.url, lab.key, events, timeout=120)
            if status != 200:
                raise RuntimeError(f"the largest request was answered {status}: {answer}")
            body = len(json.dumps(events).encode())
        time.sleep(2)
        return Memory(body, before, rss_mb(server.process.pid, "VmHWM"), rss_mb(server.process.pid))
    finally:
        server.stop()


def rss_flat(lab: Lab, events: int, subscribers: int, batch: int = 500) -> str:
    """`subscribers` /out sockets on server 1 receive every one of `events` events posted to server
    0; server 1's RSS after a warm-up tenth and at the end."""
    import websockets

    prefix = f"fault.flat.{uuid.uuid4().hex[:6]}"
    server = lab.servers[1]
    received = [0] * subscribers
    samples: list[float] = []

    async def subscriber(i: int, ready: asyncio.Event, done: asyncio.Event, count: list) -> None:
        url = server.url.replace("http", "ws") + "/api/events/out"
        async with websockets.connect(url, subprotocols=["prefect"], max_size=None, max_queue=None) as ws:
            await ws.send(json.dumps({"type": "auth", "token": lab.key}))
            await ws.recv()
            await ws.send(json.dumps({"type": "filter", "filter": {"event": {"prefix": [prefix]}}, "backfill": False}))
            count.append(i)
            if len(count) == subscribers:
                ready.set()
            while not done.is_set():
                try:
                    await asyncio.wait_for(ws.recv(), 1)
                except asyncio.TimeoutError:
                    continue
                received[i] += 1

    def produce() -> None:
        sent = 0
        while sent < events:
            n = min(batch, events - sent)
            while post(lab.servers[0].url, lab.key, [make_event(prefix) for _ in range(n)], timeout=60)[0] != 200:
                time.sleep(0.5)
            sent += n
            if sent >= events // 10 and not samples:
                time.sleep(2)
                samples.append(rss_mb(server.process.pid))

    async def main() -> None:
        ready, done, count = asyncio.Event(), asyncio.Event(), []
        tasks = [asyncio.ensure_future(subscriber(i, ready, done, count)) for i in range(subscribers)]
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(1)
        await asyncio.to_thread(produce)
        deadline = time.monotonic() + 120
        while min(received) < events and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        samples.append(rss_mb(server.process.pid))
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    started = time.monotonic()
    asyncio.run(main())
    warm, end = samples[0], samples[-1]
    return (f"{'rss flat':<28} {events:,} events to {subscribers} /out subscribers in {time.monotonic() - started:.0f} s: "
            f"delivered {sum(received):,} of {events * subscribers:,}; RSS after warm-up {warm:.0f} MB, "
            f"at the end {end:.0f} MB ({end - warm:+.0f} MB)")
