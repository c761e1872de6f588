"""Management commands: API keys, demo events, quickstart."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from eventfeed.events import demo
from eventfeed.events.management.commands import quickstart
from eventfeed.events.models import ApiKey, Event, EventResource
from eventfeed.events.schema import validate_event
from tests.conftest import make_event

ROOT = Path(__file__).resolve().parent.parent


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def post_event(client, key: str):
    return client.post("/api/events", json.dumps([make_event()]), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {key}")


# --- API keys -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_prints_only_the_key_and_the_key_works(client):
    out, err = run("create_api_key", "ci")
    key = out.strip()
    assert out.count("\n") == 1 and key.startswith("evf_") and " " not in key
    assert "shown only this once" in err
    assert ApiKey.objects.get(name="ci").key_hash != key  # stored hashed
    r = post_event(client, key)
    assert r.status_code == 200, r.content
    assert r.json() == {"new": 1, "duplicates": 0}


@pytest.mark.django_db
def test_it_lists_keys_by_hint_never_the_key():
    key = run("create_api_key", "ci")[0].strip()
    out, _ = run("list_api_keys")
    assert "ci" in out and key[:10] in out and key not in out and "active" in out


@pytest.mark.django_db
def test_it_revokes_a_key_by_id_and_the_api_refuses_it(client):
    key = run("create_api_key", "ci")[0].strip()
    api_key = ApiKey.objects.get(name="ci")
    out, _ = run("revoke_api_key", str(api_key.pk))
    assert "Revoked" in out
    r = post_event(client, key)
    assert r.status_code == 403
    assert "revoked" in r.json()["detail"]
    assert "revoked" in run("list_api_keys")[0]
    assert run("list_api_keys", "--active")[0].startswith("No API keys")


@pytest.mark.django_db
def test_it_revokes_by_name_or_by_the_key_itself_and_refuses_an_ambiguous_name():
    first = run("create_api_key", "ci")[0].strip()
    run("create_api_key", "ci")
    with pytest.raises(CommandError, match="2 active keys are named 'ci'"):
        run("revoke_api_key", "ci")
    run("revoke_api_key", first)
    run("revoke_api_key", "ci")
    assert ApiKey.objects.filter(revoked__isnull=True).count() == 0
    with pytest.raises(CommandError, match="No API key matches"):
        run("revoke_api_key", "nope")


# --- demo events: the generator -------------------------------------------------------------

FAMILIES = [
    "prefect.flow-run.Scheduled", "prefect.flow-run.Pending", "prefect.flow-run.Running",
    "prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.heartbeat",
    "prefect.task-run.", "prefect.deployment.", "prefect.work-pool.", "prefect.work-queue.",
    "prefect.worker.started", "prefect.worker.submitted-flow-run", "prefect.worker.executed-flow-run",
    "prefect.worker.stopped", "prefect.kubernetes.pod.", "prefect.ecs.task.", "prefect.docker.container.",
    "prefect.automation.triggered", "prefect.automation.action.", "prefect.automation.resolved",
    "prefect.concurrency-limit.acquired", "prefect.concurrency-limit.released", "prefect.artifact.created",
    "prefect.asset.", "prefect.block.", "prefect.flow-run.pull-step.", "acme.order.created",
    "acme.order.paid", "acme.order.shipped", "acme.data-pipeline.completed", "myteam.model.trained",
]


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return demo.backfill_events(6000, 3, seed=11)


def test_it_generates_exactly_n_valid_events_in_the_range(sample):
    assert len(sample) == 6000
    now = datetime.now(timezone.utc)
    for raw in sample:
        assert now - timedelta(days=3, minutes=1) <= raw["occurred"] <= now
    problems = [p for raw in sample[:2000] for p in validate_event(demo.wire(raw))[1]]
    assert problems == []


def test_it_covers_the_catalogue_with_heartbeats_and_flow_run_states_most_common(sample):
    names = Counter(e["event"] for e in sample)
    missing = [f for f in FAMILIES if not any(n.startswith(f) for n in names)]
    assert missing == []
    families = Counter()
    for name, n in names.items():
        families["heartbeat" if name.endswith(".heartbeat") else ".".join(name.split(".")[:2])] += n
    assert [f for f, _ in families.most_common(2)] == ["heartbeat", "prefect.flow-run"]


def test_it_reuses_a_few_hundred_stable_resources(sample):
    world = demo.build_world()
    assert 150 <= world.count() <= 500
    assert demo.build_world().deployments[3].id == world.deployments[3].id  # same seed, same resources
    flows = {r["prefect.resource.id"] for e in sample for r in e["related"] if r["prefect.resource.role"] == "flow"}
    assert flows <= {f.id for f in world.flows}


def test_it_chains_each_flow_run_state_to_the_previous_one_with_labels_and_payload(sample):
    by_id = {e["id"]: e for e in sample}
    states = [e for e in sample if e["event"].startswith("prefect.flow-run.") and e["resource"].get("prefect.state-name")]
    chained = [e for e in states if e["follows"]]
    assert len(chained) > len(states) / 2
    for e in chained:
        before = by_id[e["follows"]]
        assert before["resource"]["prefect.resource.id"] == e["resource"]["prefect.resource.id"]
        assert e["payload"]["initial_state"] == before["payload"]["validated_state"]
        assert e["payload"]["intended"] == {"from": before["resource"]["prefect.state-type"], "to": e["resource"]["prefect.state-type"]}
    running = next(e for e in states if e["event"] == "prefect.flow-run.Running")
    assert {"prefect.run-count", "prefect.state-timestamp", "prefect.state-type", "prefect.resource.name"} <= set(running["resource"])
    roles = {r["prefect.resource.role"] for r in running["related"]}
    assert {"flow", "deployment", "work-queue", "work-pool", "tag"} <= roles
    pool = next(r for r in running["related"] if r["prefect.resource.role"] == "work-pool")
    assert pool["prefect.work-pool.type"] in {"kubernetes", "ecs", "docker", "process"}


def test_it_links_worker_and_infrastructure_events_by_follows(sample):
    by_id = {e["id"]: e for e in sample}
    executed = [e for e in sample if e["event"] == "prefect.worker.executed-flow-run"]
    assert executed and all(by_id[e["follows"]]["event"] == "prefect.worker.submitted-flow-run" for e in executed)
    run = next(r for r in executed[0]["related"] if r["prefect.resource.role"] == "flow-run")
    assert {"prefect.infrastructure.identifier", "prefect.infrastructure.status-code"} <= set(run)
    stopped = [e for e in sample if e["event"] == "prefect.worker.stopped"]
    assert stopped and all(by_id[e["follows"]]["event"] == "prefect.worker.started" for e in stopped)
    pods = [e for e in sample if e["event"].startswith("prefect.kubernetes.pod.")]
    for e in pods:
        uid = e["resource"]["prefect.resource.id"].rsplit(".", 1)[1]
        phase = e["event"].rsplit(".", 1)[1]
        assert e["id"] == str(uuid.uuid5(demo.POD_NAMESPACE, f"{uid}{phase}0"))
        if e["follows"]:
            assert e["occurred"] - by_id[e["follows"]]["occurred"] <= timedelta(minutes=5)
        assert {"flow-run", "deployment", "flow", "work-pool"} <= {r["prefect.resource.role"] for r in e["related"]}


def test_it_relates_custom_orders_to_customers(sample):
    shipped = [e for e in sample if e["event"] == "acme.order.shipped"]
    assert shipped
    customers = {r["prefect.resource.id"] for e in sample if e["event"].startswith("acme.order.")
                 for r in e["related"] if r["prefect.resource.role"] == "customer"}
    assert any(c.startswith("acme.customer.vip-") for c in customers)


def test_it_streams_events_timed_now_whose_predecessors_came_first():
    streamer = demo.Streamer(rate=20, seed=5)
    start = datetime.now(timezone.utc)
    seen: set[str] = set()
    total = 0
    for second in range(1, 31):
        batch = streamer.due(start + timedelta(seconds=second))
        for e in batch:
            assert e["occurred"] <= start + timedelta(seconds=second)
            assert e["occurred"] >= start - timedelta(seconds=1)
            assert e["follows"] is None or e["follows"] in seen
            seen.add(e["id"])
        total += len(batch)
    assert 20 * 30 * 0.5 <= total <= 20 * 30 * 2


# --- demo events: the command ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_backfills_n_events_through_ingest_with_follows_pointing_to_stored_events():
    out, _ = run("demo_events", "--backfill", "2500", "--days", "2", "--seed", "4")
    assert "Backfilled 2,500 demo events" in out
    assert Event.objects.count() == 2500
    ids = set(Event.objects.values_list("id", flat=True))
    follows = set(Event.objects.exclude(follows=None).values_list("follows", flat=True))
    assert follows and follows <= ids
    names = set(Event.objects.values_list("event", flat=True))
    for family in ("prefect.flow-run.", "prefect.worker.", "prefect.kubernetes.pod.", "prefect.ecs.task.", "acme.order."):
        assert any(n.startswith(family) for n in names), family
    # The resource table was written by the real ingest path: one row per primary resource.
    assert EventResource.objects.filter(role="").count() == 2500


def test_it_refuses_to_stream_without_a_key(monkeypatch):
    monkeypatch.delenv("EVENTFEED_API_KEY", raising=False)
    with pytest.raises(CommandError, match="needs an API key"):
        run("demo_events", "--stream", "5", "--key", "")


@pytest.mark.django_db(transaction=True)
def test_it_streams_through_the_http_door(live_server):
    _, key = ApiKey.create("demo")
    answers = list(demo.stream(live_server.url, key, rate=10, seed=9, ticks=2, log=lambda m: None))
    assert answers and sum(a["new"] for a in answers) == Event.objects.count() > 0


@pytest.mark.django_db(transaction=True)
def test_it_stops_streaming_when_the_key_is_refused(live_server):
    with pytest.raises(SystemExit, match="refused the API key"):
        list(demo.stream(live_server.url, "evf_wrong", rate=10, ticks=2, log=lambda m: None))


# --- quickstart -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_prepares_a_fresh_site_once(client):
    lines: list[str] = []
    first = quickstart.prepare(lines.append, backfill=400, days=1)
    assert first.username == "admin" and first.password
    assert authenticate(username="admin", password=first.password).is_superuser
    # Besides the demo events: the audit trail of the demo keys made and replaced.
    demo_and_posted = Event.objects.exclude(event__startswith="eventfeed.audit.")
    assert first.backfilled == 400 == demo_and_posted.count()
    assert post_event(client, first.key).status_code == 200

    again = quickstart.prepare(lines.append, backfill=400, days=1)
    assert again.username == "admin" and again.password is None
    assert again.backfilled == 0 and demo_and_posted.count() == 401
    # The earlier demo key was replaced, not piled up.
    assert post_event(client, first.key).status_code == 403
    assert post_event(client, again.key).status_code == 200
    assert ApiKey.objects.filter(name="demo", revoked__isnull=True).count() == 1


@pytest.mark.django_db
def test_it_keeps_an_existing_user():
    get_user_model().objects.create_user("dana", password="x-password-1")
    assert quickstart.ensure_admin() == ("dana", None)
    assert not get_user_model().objects.filter(username="admin").exists()


def test_it_runs_the_automation_worker_only_when_it_exists():
    argvs = lambda **kw: [label for label, _, _ in quickstart.children("127.0.0.1", 8000, "k", **kw)]  # noqa: E731
    assert argvs(stream=3, automations=False) == ["server", "demo stream"]
    assert argvs(stream=0, automations=True) == ["server", "automations"]
    env = quickstart.children("127.0.0.1", 8000, "evf_secret", stream=3, automations=False)[1]
    assert "evf_secret" not in " ".join(env[1]) and env[2] == {"EVENTFEED_API_KEY": "evf_secret"}


def test_it_starts_a_prefect_follower_with_follow_prefect():
    procs = quickstart.children("127.0.0.1", 8000, "k", stream=0, automations=True,
                                follow=["http://127.0.0.1:4200/api", "http://other:4200/api"])
    label, argv, env = procs[-1]
    assert label == "prefect follower" and env == {}
    assert argv[-5:] == ["follow_prefect", "--url", "http://127.0.0.1:4200/api", "--url", "http://other:4200/api"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_it_serves_streams_and_stops_cleanly_on_ctrl_c(tmp_path):
    """The whole quickstart in a subprocess, on its own SQLite file."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'qs.sqlite3'}", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "quickstart", "--port", str(port), "--backfill", "300", "--rate", "20"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(output)
        assert f"running at http://localhost:{port}/" in text, text
        assert "Sign in as: admin   password: " in text
        assert "REDIS_URL is not set" not in text  # nothing that reads as an error
        key = text.split("API key 'demo': ")[1].split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as r:
            assert r.status == 200
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/events", data=json.dumps(make_event()).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            assert json.load(r) == {"new": 1, "duplicates": 0}
        # The printed curl works as pasted.
        curl = text.split("Send an event:  ")[1].splitlines()[0]
        sent = subprocess.run(["bash", "-c", curl.replace("localhost", "127.0.0.1")], capture_output=True, text=True, timeout=30)
        assert json.loads(sent.stdout) == {"new": 1, "duplicates": 0}, sent
        # As in production: the app's own 404 page, compressed pages, year-long hashed static files.
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no/such/page", timeout=10)
        except urllib.error.HTTPError as e:
            body = e.read().decode()
            assert e.code == 404 and "Page not found" in body and "URLconf" not in body
        login = urllib.request.Request(f"http://127.0.0.1:{port}/accounts/login/", headers={"Accept-Encoding": "gzip, br"})
        with urllib.request.urlopen(login, timeout=10) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            css = re.search(r'href="(/static/css/eventfeed\.[0-9a-f]{12}\.css)"', gzip.decompress(r.read()).decode()).group(1)
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{css}", headers={"Accept-Encoding": "br"}), timeout=10) as r:
            assert r.headers["Content-Encoding"] == "br"
            assert "max-age=315360000" in r.headers["Cache-Control"] and "immutable" in r.headers["Cache-Control"]
        # The demo stream posts once a second, after its own start-up.
        deadline = time.monotonic() + 30
        while count_events(tmp_path / "qs.sqlite3") <= 301 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        # Ctrl-C in a terminal reaches the whole foreground group; here the children get it via
        # quickstart's own shutdown.
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    output.append(rest)
    assert proc.returncode == 0, "".join(output)
    assert "Stopped." in rest
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the server is still listening"
    assert count_events(tmp_path / "qs.sqlite3") > 301  # backfill + our event + the stream's


def count_events(path: Path) -> int:
    with closing(sqlite3.connect(path, timeout=10)) as db:
        return db.execute("SELECT count(*) FROM events_event").fetchone()[0]
