"""Demo events: realistic traffic from the whole catalogue of Prefect's event families.

A `World` holds the stable resources (flows, deployments, work pools and queues, workers, tags,
automations, …), built from a fixed seed so that a backfill and a later live stream talk about
the same deployments. Stories are plain functions that return the events of one thing that
happened (a flow run from Scheduled to Completed with its worker, pod, task runs and artifacts; an
order from created to shipped; …) in time order, each `follows` pointing at an earlier event of
the same story. `backfill()` spreads stories over a time range; `Streamer` plays them in real time.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from .wire import iso, wire as wire_shape

PREFECT_VERSION = "3.4.11"
# Pod event ids are derived from (uid, phase, restart count), as prefect-kubernetes does, so a
# re-observed phase is a duplicate and not a second event.
POD_NAMESPACE = uuid.UUID("6f0c2b1e-3a5d-4c8e-9b7a-1d2e3f405162")
# The SDK only sets `follows` when the two events are this close (prefect.events.utilities).
TIGHT_TIMING = timedelta(minutes=5)

ADJECTIVES = (
    "crimson amber azure brisk calm daring eager fuzzy gentle hidden icy jolly keen lucky mellow "
    "nimble olive proud quiet rapid silver tidy upbeat vivid witty young zesty"
).split()
ANIMALS = (
    "fox otter heron lynx badger falcon gecko ibis jackal koala lemur marmot newt ocelot puffin "
    "quail raven seal tapir urchin viper walrus yak zebra"
).split()

FLOWS = [
    "etl-orders", "etl-customers", "sync-inventory", "daily-revenue-report", "train-churn-model",
    "score-leads", "refresh-dashboards", "ingest-clickstream", "backup-postgres", "reconcile-payments",
    "dbt-build", "export-to-s3", "send-weekly-digest", "compact-lake", "validate-contracts",
    "fetch-exchange-rates", "geocode-addresses", "rebuild-search-index", "purge-gdpr-requests",
    "forecast-demand",
]
# (name, type) — the type decides which infrastructure events a run produces.
WORK_POOLS = [
    ("k8s-prod", "kubernetes"), ("k8s-staging", "kubernetes"), ("ecs-batch", "ecs"),
    ("ecs-ml", "ecs"), ("docker-local", "docker"), ("process-dev", "process"),
]
TAGS = [
    "prod", "staging", "nightly", "hourly", "finance", "marketing", "ml", "critical", "etl",
    "reporting", "team-data", "team-platform", "team-growth", "pii", "backfill", "experimental",
    "gpu", "sla-1h", "customer-facing", "dbt",
]
BLOCK_TYPES = [
    ("s3-bucket", "acme-lake"), ("slack-webhook", "oncall-alerts"), ("secret", "warehouse-password"),
    ("gcs-bucket", "ml-artifacts"), ("github-credentials", "deploy-bot"), ("json", "feature-flags"),
    ("aws-credentials", "prod-etl"), ("sqlalchemy-connector", "warehouse"),
]
AUTOMATIONS = [
    "Page on-call when a prod flow run fails", "Slack #data when a run crashes",
    "Cancel runs stuck in Pending for 10 minutes", "Pause the work pool on repeated crashes",
    "Notify finance when the revenue report is late",
]
ACTIONS = ["send-notification", "cancel-flow-run", "pause-work-pool", "run-deployment", "call-webhook"]
CONCURRENCY_LIMITS = [("warehouse", 10), ("external-api", 3), ("gpu", 2), ("s3-writes", 20), ("tag:critical", 5)]
ASSETS = [
    "s3://acme-lake/raw/orders", "s3://acme-lake/raw/customers", "s3://acme-lake/clean/orders",
    "s3://acme-lake/clean/customers", "s3://acme-lake/marts/revenue_daily", "s3://acme-lake/marts/ltv",
    "postgres://warehouse/analytics/fct_orders", "postgres://warehouse/analytics/dim_customers",
    "postgres://warehouse/analytics/churn_scores", "gs://ml-artifacts/models/churn",
    "gs://ml-artifacts/features/customer_v3", "snowflake://acme/prod/exchange_rates",
]
PIPELINES = ["orders-daily", "customers-hourly", "clickstream-stream", "finance-close", "ml-features"]
MODELS = ["churn", "lead-score", "demand-forecast", "fraud-detect"]
CLUSTERS = ["arn:aws:ecs:eu-west-1:123456789012:cluster/batch", "arn:aws:ecs:eu-west-1:123456789012:cluster/ml"]
K8S_NAMESPACES = ["prefect", "data-jobs", "ml"]
STATE_MESSAGES = {
    "Failed": [
        "Flow run encountered an exception: KeyError: 'customer_id'",
        "Flow run encountered an exception: TimeoutError: warehouse query exceeded 300s",
        "Flow run encountered an exception: HTTPStatusError: 503 Service Unavailable",
        "Task run 'load-batch' failed after 3 attempts.",
    ],
    "Crashed": [
        "Flow run infrastructure exited with non-zero status code 137.",
        "Pod was evicted: the node was low on resource: memory.",
        "Execution was interrupted by an unexpected exception: SIGTERM",
    ],
    "Cancelled": ["Cancelled by user.", "Cancelled by automation: Cancel runs stuck in Pending for 10 minutes"],
    "Cancelling": ["Cancellation requested."],
    "Paused": ["Waiting for approval: promote the model?"],
    "Suspended": ["Suspended: waiting for input; infrastructure released."],
    "Late": ["Run is late: its worker has not picked it up."],
    "AwaitingConcurrencySlot": ["Waiting for a slot of the concurrency limit 'warehouse'."],
    "AwaitingRetry": ["Retry 1/3 in 30 seconds."],
}
STATE_TYPES = {
    "Scheduled": "SCHEDULED", "Late": "SCHEDULED", "AwaitingConcurrencySlot": "SCHEDULED",
    "AwaitingRetry": "SCHEDULED", "Pending": "PENDING", "Running": "RUNNING", "Retrying": "RUNNING",
    "Completed": "COMPLETED", "Failed": "FAILED", "Crashed": "CRASHED", "Cancelled": "CANCELLED",
    "Cancelling": "CANCELLING", "Paused": "PAUSED", "Suspended": "PAUSED",
}


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def rand_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def run_name(rng: random.Random) -> str:
    return f"{rng.choice(ADJECTIVES)}-{rng.choice(ANIMALS)}"


# --- the stable resources ------------------------------------------------------------------


@dataclass
class Thing:
    """A stable resource: its id, display name and the extra labels it always carries."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def resource(self, **labels: str) -> dict[str, str]:
        return {"prefect.resource.id": self.id, "prefect.resource.name": self.name, **self.labels, **labels}

    def related(self, role: str, **labels: str) -> dict[str, str]:
        return {**self.resource(**labels), "prefect.resource.role": role}


def tag(name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"prefect.tag.{name}", "prefect.resource.role": "tag"}


@dataclass
class World:
    flows: list[Thing]
    pools: list[Thing]
    queues: list[Thing]
    workers: list[Thing]
    deployments: list[Thing]
    runners: list[Thing]
    automations: list[Thing]
    limits: list[Thing]
    blocks: list[Thing]
    customers: list[Thing]

    def count(self) -> int:
        return sum(len(v) for v in vars(self).values()) + len(TAGS) + len(ASSETS)


def build_world(seed: int = 7) -> World:
    """The same seed gives the same resources, so backfill and stream share deployments."""
    rng = random.Random(seed)
    flows = [Thing(f"prefect.flow.{rand_uuid(rng)}", name) for name in FLOWS]
    pools = [
        Thing(f"prefect.work-pool.{rand_uuid(rng)}", name, {"prefect.work-pool.type": kind}, {"type": kind})
        for name, kind in WORK_POOLS
    ]
    queues, workers = [], []
    for pool in pools:
        for qname in ["default", "high-priority", "low-priority"][: rng.randint(1, 3)]:
            queues.append(Thing(f"prefect.work-queue.{rand_uuid(rng)}", qname, extra={"pool": pool}))
        kind = pool.extra["type"]
        if kind == "process":
            continue
        for i in range(rng.randint(2, 4)):
            name = f"{kind.capitalize()}Worker {pool.name}-{i + 1}"
            workers.append(
                Thing(f"prefect.worker.{kind}.{slug(name)}", name, {"prefect.worker-type": kind}, {"pool": pool})
            )
    deployments = []
    for flow in flows:
        for variant in rng.sample(["prod", "staging", "hourly", "backfill", "adhoc"], rng.randint(1, 3)):
            pool = rng.choice(pools)
            pool_queues = [q for q in queues if q.extra["pool"] is pool]
            tags = rng.sample(TAGS, rng.randint(1, 4))
            deployments.append(
                Thing(
                    f"prefect.deployment.{rand_uuid(rng)}",
                    f"{flow.name}/{variant}",
                    extra={
                        "flow": flow,
                        "pool": pool,
                        "queue": rng.choice(pool_queues),
                        "tags": tags,
                        "heartbeat": rng.random() < 0.75,
                        "pull_steps": rng.random() < 0.5,
                        "limit": rng.random() < 0.3,
                    },
                )
            )
    runners = [Thing(f"prefect.runner.{slug(n)}", n, {"prefect.version": PREFECT_VERSION}) for n in ("serve-etl", "serve-reports", "laptop-dana")]
    automations = [Thing(f"prefect.automation.{rand_uuid(rng)}", name) for name in AUTOMATIONS]
    limits = [
        Thing(f"prefect.concurrency-limit.{rand_uuid(rng)}", name, extra={"limit": limit})
        for name, limit in CONCURRENCY_LIMITS
    ]
    blocks = [
        Thing(f"prefect.block-document.{rand_uuid(rng)}", name, extra={"type": kind}) for kind, name in BLOCK_TYPES
    ]
    customers = [Thing(f"acme.customer.vip-{i}", f"VIP customer {i}") for i in range(1, 11)] + [
        Thing(f"acme.customer.{10000 + i}", f"Customer {10000 + i}") for i in range(60)
    ]
    return World(flows, pools, queues, workers, deployments, runners, automations, limits, blocks, customers)


# --- building events ----------------------------------------------------------------------


class Story:
    """The events of one story, with `follows` only ever pointing back inside it."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.events: list[dict] = []

    def emit(self, name: str, at: datetime, resource: dict, related=(), payload=None, follows=None, id=None) -> dict:
        event = {
            "id": str(id or rand_uuid(self.rng)),
            "occurred": at,
            "event": name,
            "resource": resource,
            "related": list(related),
            "payload": payload or {},
            "follows": follows["id"] if follows else None,
        }
        self.events.append(event)
        return event


def state_obj(name: str, message: str = "", paused: bool = False) -> dict:
    state = {"type": STATE_TYPES[name], "name": name, "message": message}
    if paused:
        state["pause_reschedule"] = name == "Suspended"
    return state


def flow_run_story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    """One flow run of a deployment, with everything that happens around it."""
    s = Story(rng)
    dep = rng.choice(world.deployments)
    flow, pool, queue = dep.extra["flow"], dep.extra["pool"], dep.extra["queue"]
    kind = pool.extra["type"]
    tags = dep.extra["tags"]
    run = Thing(f"prefect.flow-run.{rand_uuid(rng)}", run_name(rng))
    pool_workers = [w for w in world.workers if w.extra["pool"] is pool]
    worker = rng.choice(pool_workers) if pool_workers else None
    runner = rng.choice(world.runners) if kind == "process" else None

    context = [flow.related("flow"), dep.related("deployment")]
    state_related = [
        *context,
        queue.related("work-queue"),
        pool.related("work-pool"),
        *[tag(t) for t in tags],
    ]
    if rng.random() < 0.1:
        state_related.append(rng.choice(world.automations).related("creator"))
    else:
        state_related.append(dep.related("creator"))

    run_count = 0
    previous: dict | None = None
    t = start

    def state(name: str, at: datetime) -> dict:
        nonlocal previous, run_count
        if name in ("Running", "Retrying") and not (previous and previous["resource"]["prefect.state-name"] == "Paused"):
            run_count += 1
        message = rng.choice(STATE_MESSAGES.get(name, [""]))
        paused = name in ("Paused", "Suspended")
        before = previous["payload"]["validated_state"] if previous else None
        event = s.emit(
            f"prefect.flow-run.{name}",
            at,
            run.resource(
                **{
                    "prefect.run-count": str(run_count),
                    "prefect.state-message": message,
                    "prefect.state-name": name,
                    "prefect.state-timestamp": iso(at),
                    "prefect.state-type": STATE_TYPES[name],
                }
            ),
            state_related,
            {
                "intended": {"from": before["type"] if before else None, "to": STATE_TYPES[name]},
                "initial_state": before,
                "validated_state": state_obj(name, message, paused),
            },
            follows=previous,
        )
        previous = event
        return event

    state("Scheduled", t)
    roll = rng.random()
    if roll < 0.05:
        t += timedelta(seconds=rng.randint(60, 300))
        state("Late", t)
    elif roll < 0.09:
        t += timedelta(seconds=rng.randint(1, 5))
        state("AwaitingConcurrencySlot", t)
        t += timedelta(seconds=rng.randint(10, 120))
    t += timedelta(seconds=rng.uniform(0.5, 5))

    submitted = None
    if worker:
        submitted = s.emit(
            "prefect.worker.submitted-flow-run",
            t,
            worker.resource(**{"prefect.version": PREFECT_VERSION}),
            [run.related("flow-run"), flow.related("flow"), dep.related("deployment"), pool.related("work-pool"), *[tag(x) for x in tags]],
        )
    state("Pending", t + timedelta(milliseconds=rng.randint(50, 400)))
    infra = Infrastructure(s, world, rng, kind, run, dep, worker)
    infra.phase("start", t + timedelta(seconds=rng.uniform(0.5, 2)))
    t += timedelta(seconds=rng.uniform(2, 40 if kind in ("kubernetes", "ecs") else 6))

    if dep.extra["pull_steps"]:
        ok = rng.random() > 0.03
        s.emit(
            f"prefect.flow-run.pull-step.{'executed' if ok else 'failed'}",
            t,
            run.resource(),
            context,
            {
                "id": "clone-repo",
                "step": "prefect.deployments.steps.git_clone",
                "repository": f"https://github.com/acme/{flow.name}.git",
                "branch": "main",
                **({} if ok else {"error": "fatal: could not read Username for 'https://github.com': terminal prompts disabled"}),
            },
        )
        t += timedelta(seconds=rng.uniform(1, 8))
        if not ok:
            state("Crashed", t)
            infra.phase("fail", t + timedelta(seconds=1))
            _finish_worker(s, worker, submitted, run, flow, dep, pool, tags, t + timedelta(seconds=2), 1)
            return _failure_automation(s, world, rng, previous, t) 

    state("Running", t)
    infra.phase("running", t - timedelta(seconds=rng.uniform(0.2, 1)))
    duration = timedelta(seconds=min(3600, max(5, rng.lognormvariate(5.3, 0.9))))
    end = t + duration

    outcome = rng.choices(
        ["Completed", "Failed", "Crashed", "Cancelled", "Retry", "Paused"], weights=[74, 9, 4, 4, 6, 3]
    )[0]
    _run_body(s, world, rng, run, flow, dep, tags, t, end)
    if dep.extra["heartbeat"]:
        beat = t + timedelta(seconds=30)
        while beat < end:
            s.emit(
                "prefect.flow-run.heartbeat",
                beat,
                run.resource(**{"prefect.version": PREFECT_VERSION}),
                [*context, *[tag(x) for x in tags]],
            )
            beat += timedelta(seconds=rng.uniform(29.5, 30.5))

    exit_code = 0
    if outcome == "Retry":
        state("Failed" if rng.random() < 0.2 else "AwaitingRetry", end)
        end += timedelta(seconds=30)
        state("Retrying", end)
        end += timedelta(seconds=rng.uniform(20, 300))
        state(rng.choice(["Completed", "Completed", "Failed"]), end)
    elif outcome == "Paused":
        paused = "Suspended" if rng.random() < 0.3 else "Paused"
        state(paused, end)
        end += timedelta(seconds=rng.uniform(30, 600))
        state("Running", end)
        end += timedelta(seconds=rng.uniform(10, 120))
        state("Completed", end)
    elif outcome == "Cancelled":
        state("Cancelling", end)
        if runner:
            s.emit(
                "prefect.runner.cancelled-flow-run",
                end + timedelta(seconds=1),
                runner.resource(),
                [dep.related("deployment"), flow.related("flow"), run.related("flow-run"), *[tag(x) for x in tags]],
            )
        end += timedelta(seconds=rng.uniform(1, 10))
        state("Cancelled", end)
        exit_code = 143
    else:
        state(outcome, end)
        exit_code = {"Completed": 0, "Failed": 1, "Crashed": 137}[outcome]
    infra.phase("fail" if outcome == "Crashed" else "stop", end + timedelta(milliseconds=rng.randint(100, 1500)))
    _finish_worker(s, worker, submitted, run, flow, dep, pool, tags, end + timedelta(seconds=rng.uniform(1, 3)), exit_code)
    if previous["resource"]["prefect.state-type"] in ("FAILED", "CRASHED"):
        _failure_automation(s, world, rng, previous, end)
    return s.events


def _finish_worker(s, worker, submitted, run, flow, dep, pool, tags, at, exit_code) -> None:
    if not worker:
        return
    s.emit(
        "prefect.worker.executed-flow-run",
        at,
        worker.resource(**{"prefect.version": PREFECT_VERSION}),
        [
            run.related(
                "flow-run",
                **{
                    "prefect.infrastructure.identifier": f"{worker.extra['pool'].extra['type']}-{run.id[-12:]}",
                    "prefect.infrastructure.status-code": str(exit_code),
                },
            ),
            flow.related("flow"),
            dep.related("deployment"),
            pool.related("work-pool"),
            *[tag(x) for x in tags],
        ],
        follows=submitted,
    )


def _failure_automation(s: Story, world: World, rng: random.Random, trigger: dict, at: datetime) -> list[dict]:
    """Most failed or crashed runs fire an automation: triggered → action → resolved."""
    if rng.random() > 0.6:
        return s.events
    automation = rng.choice(world.automations[:2])
    triggering = {"prefect.resource.id": f"prefect.event.{trigger['id']}", "prefect.resource.role": "triggering-event"}
    at += timedelta(seconds=rng.uniform(0.5, 3))
    fired = s.emit(
        "prefect.automation.triggered",
        at,
        automation.resource(),
        [triggering, {**{k: v for k, v in trigger["resource"].items() if k.startswith("prefect.resource.")}, "prefect.resource.role": "triggering-resource"}],
        {
            "triggering_labels": {},
            "triggering_event": {"id": trigger["id"], "event": trigger["event"], "occurred": iso(trigger["occurred"])},
            "trigger_state": "Triggered",
        },
    )
    action_type = rng.choice(ACTIONS[:2])
    action = s.emit(
        "prefect.automation.action.triggered",
        at + timedelta(milliseconds=rng.randint(20, 300)),
        automation.resource(),
        [triggering],
        {"action_index": 0, "action_type": action_type, "invocation": str(rand_uuid(rng))},
        follows=fired,
    )
    ok = rng.random() < 0.9
    s.emit(
        f"prefect.automation.action.{'executed' if ok else 'failed'}",
        at + timedelta(seconds=rng.uniform(0.3, 2)),
        automation.resource(),
        [triggering],
        {
            "action_index": 0,
            "action_type": action_type,
            "invocation": action["payload"]["invocation"],
            **({"status_code": 200} if ok else {"reason": "Slack returned 429 Too Many Requests"}),
        },
        follows=action,
    )
    s.emit(
        "prefect.automation.resolved",
        at + timedelta(seconds=rng.uniform(60, 290)),
        automation.resource(),
        [triggering],
        {"trigger_state": "Resolved"},
        follows=fired,
    )
    return s.events


def _run_body(s: Story, world: World, rng: random.Random, run, flow, dep, tags, start: datetime, end: datetime) -> None:
    """Task runs, concurrency slots, blocks, artifacts and assets inside a running flow run."""
    span = (end - start).total_seconds()
    run_rel = run.related("flow-run")
    context = [run_rel, flow.related("flow"), dep.related("deployment"), *[tag(x) for x in tags]]
    if rng.random() < 0.35:
        block = rng.choice(world.blocks)
        s.emit(
            f"prefect.block.{block.extra['type']}.loaded",
            start + timedelta(seconds=rng.uniform(0.1, 2)),
            block.resource(),
            [
                {"prefect.resource.id": f"prefect.block-type.{block.extra['type']}", "prefect.resource.role": "block-type"},
                run_rel,
            ],
        )
    lease = None
    if dep.extra["limit"]:
        limit = rng.choice(world.limits)
        lease = (limit, s.emit(
            "prefect.concurrency-limit.acquired",
            start + timedelta(seconds=rng.uniform(0.1, 1)),
            limit.resource(**{"slots-acquired": "1", "limit": str(limit.extra["limit"])}),
            [run_rel],
        ))
    for i in range(rng.choices([0, 1, 2, 4], weights=[45, 30, 15, 10])[0]):
        task = Thing(f"prefect.task-run.{rand_uuid(rng)}", f"{rng.choice(['extract', 'transform', 'load', 'validate', 'notify'])}-{rng.randint(0, 999):03d}")
        at = start + timedelta(seconds=span * rng.uniform(0.05, 0.8))
        previous = None
        before = None
        names = ["Pending", "Running", "Failed" if rng.random() < 0.05 else "Completed"]
        for name in names:
            previous = s.emit(
                f"prefect.task-run.{name}",
                at,
                task.resource(
                    **{
                        "prefect.run-count": "1",
                        "prefect.state-message": "",
                        "prefect.state-name": name,
                        "prefect.state-timestamp": iso(at),
                        "prefect.state-type": STATE_TYPES[name],
                        "prefect.orchestration": "client",
                    }
                ),
                context,
                {
                    "intended": {"from": before["type"] if before else None, "to": STATE_TYPES[name]},
                    "initial_state": before,
                    "validated_state": state_obj(name),
                    "task_run": {"name": task.name, "task_key": task.name.rsplit("-", 1)[0], "dynamic_key": str(i)},
                },
                follows=previous,
            )
            before = previous["payload"]["validated_state"]
            at += timedelta(seconds=rng.uniform(0.01, 0.3) if name == "Pending" else min(span * 0.2, rng.uniform(1, 120)))
    if rng.random() < 0.3:
        key = rng.choice(["revenue-summary", "row-counts", "model-metrics", "data-quality"])
        art = Thing(f"prefect.artifact.{rand_uuid(rng)}", key, {"prefect.artifact.type": rng.choice(["markdown", "table", "progress"])})
        created = s.emit("prefect.artifact.created", start + timedelta(seconds=span * 0.5), art.resource(), context,
                         {"key": key, "description": f"{key.replace('-', ' ')} for {run.name}"})
        if rng.random() < 0.4:
            s.emit("prefect.artifact.updated", start + timedelta(seconds=span * 0.5 + rng.uniform(1, 60)), art.resource(), context,
                   {"key": key, "progress": rng.randint(10, 100)}, follows=created)
    if rng.random() < 0.3:
        upstream, target = rng.sample(ASSETS, 2)
        at = start + timedelta(seconds=span * 0.6)
        s.emit("prefect.asset.referenced", at, {"prefect.resource.id": upstream}, context)
        ok = rng.random() < 0.9
        s.emit(
            f"prefect.asset.materialization.{'succeeded' if ok else 'failed'}",
            at + timedelta(seconds=span * 0.3),
            {"prefect.resource.id": target, "prefect.resource.name": target.rsplit("/", 1)[-1]},
            [{"prefect.resource.id": upstream, "prefect.resource.role": "asset"}, *context],
            {"rows": rng.randint(1000, 5_000_000)} if ok else {"error": "upstream schema changed: column 'amount' missing"},
        )
    if lease:
        limit, acquired = lease
        s.emit(
            "prefect.concurrency-limit.released",
            end - timedelta(milliseconds=rng.randint(5, 500)),
            limit.resource(**{"slots-released": "1", "limit": str(limit.extra["limit"])}),
            [run_rel],
            follows=acquired,
        )


class Infrastructure:
    """Kubernetes pods, ECS tasks or Docker containers, as the integrations observe them."""

    def __init__(self, story: Story, world: World, rng: random.Random, kind: str, run: Thing, dep: Thing, worker: Thing | None):
        self.s, self.rng, self.kind = story, rng, kind
        self.last: dict | None = None
        flow, pool = dep.extra["flow"], dep.extra["pool"]
        self.related = [run.related("flow-run"), dep.related("deployment"), flow.related("flow"), pool.related("work-pool")]
        if worker:
            self.related.append(worker.related("worker"))
        self.uid = rand_uuid(rng)
        self.name = f"{run.name}-{self.uid.hex[:5]}"
        self.restarts = 0
        self.task_def = f"arn:aws:ecs:eu-west-1:123456789012:task-definition/prefect-{flow.name}:{rng.randint(1, 40)}"
        self.cluster = rng.choice(CLUSTERS)
        self.namespace = rng.choice(K8S_NAMESPACES)

    def phase(self, step: str, at: datetime) -> None:
        if self.kind == "kubernetes":
            phases = {"start": ["pending"], "running": ["running"], "stop": ["succeeded"],
                      "fail": ["evicted" if self.rng.random() < 0.4 else "failed"]}[step]
            if step == "running" and self.rng.random() < 0.03:
                phases = ["unknown", "running"]
        elif self.kind == "ecs":
            phases = {"start": ["provisioning", "pending", "activating"], "running": ["running"],
                      "stop": ["deactivating", "stopping", "deprovisioning", "stopped"],
                      "fail": ["stopping", "stopped"]}[step]
            if step == "stop" and self.rng.random() < 0.1:
                phases = [*phases, "deleted"]
        elif self.kind == "docker":
            phases = {"start": ["created"], "running": ["running"], "stop": ["exited"], "fail": ["dead"]}[step]
        else:
            return
        for i, phase in enumerate(phases):
            self._emit(phase, at + timedelta(seconds=i * self.rng.uniform(0.5, 3)))

    def _emit(self, phase: str, at: datetime) -> None:
        if self.last and at <= self.last["occurred"]:
            # Phases are observed in order even when the integration's clocks say otherwise.
            at = self.last["occurred"] + timedelta(milliseconds=self.rng.randint(50, 500))
        follows = self.last if self.last and at - self.last["occurred"] <= TIGHT_TIMING else None
        if self.kind == "kubernetes":
            resource = {
                "prefect.resource.id": f"prefect.kubernetes.pod.{self.uid}",
                "prefect.resource.name": self.name,
                "kubernetes.namespace": self.namespace,
            }
            if phase == "evicted":
                resource["kubernetes.reason"] = "The node was low on resource: memory."
            event_id = uuid.uuid5(POD_NAMESPACE, f"{self.uid}{phase}{self.restarts}")
            self.last = self.s.emit(f"prefect.kubernetes.pod.{phase}", at, resource, self.related, follows=follows, id=event_id)
        elif self.kind == "ecs":
            task_id = self.uid.hex
            resource = {
                "prefect.resource.id": f"prefect.ecs.task.{task_id}",
                "ecs.taskArn": f"{self.cluster.replace(':cluster/', ':task/')}/{task_id}",
                "ecs.clusterArn": self.cluster,
                "ecs.taskDefinitionArn": self.task_def,
            }
            self.last = self.s.emit(f"prefect.ecs.task.{phase}", at, resource, self.related, follows=follows)
        else:
            container = self.uid.hex + self.uid.hex[:32]
            resource = {
                "prefect.resource.id": f"prefect.docker.container.{container}",
                "prefect.resource.name": self.name,
            }
            self.last = self.s.emit(f"prefect.docker.container.{phase}", at, resource, self.related, follows=follows)


def worker_session_story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    s = Story(rng)
    worker = rng.choice(world.workers)
    related = [worker.extra["pool"].related("work-pool")]
    labels = {"prefect.version": PREFECT_VERSION}
    started = s.emit("prefect.worker.started", start, worker.resource(**labels), related)
    s.emit("prefect.worker.stopped", start + timedelta(minutes=rng.uniform(3, 60 * 12)), worker.resource(**labels), related, follows=started)
    return s.events


def deployment_story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    s = Story(rng)
    dep = rng.choice(world.deployments)
    related = [dep.extra["flow"].related("flow"), dep.extra["pool"].related("work-pool"), *[tag(t) for t in dep.extra["tags"]]]
    roll = rng.random()
    if roll < 0.1:
        created = s.emit("prefect.deployment.created", start, dep.resource(), related)
        s.emit("prefect.deployment.ready", start + timedelta(seconds=rng.uniform(5, 90)), dep.resource(), related, follows=created)
    elif roll < 0.15:
        s.emit("prefect.deployment.deleted", start, dep.resource(), related)
    elif roll < 0.75:
        field_name = rng.choice(["description", "parameters", "schedules", "paused", "job_variables", "version"])
        updates = {
            "description": {"from": "Nightly load", "to": "Nightly load (v2, incremental)"},
            "parameters": {"from": {"days": 1}, "to": {"days": 3}},
            "schedules": {"from": "0 2 * * *", "to": "0 3 * * *"},
            "paused": {"from": False, "to": True},
            "job_variables": {"from": {"memory": "2Gi"}, "to": {"memory": "4Gi"}},
            "version": {"from": "1.4.0", "to": "1.5.0"},
        }[field_name]
        s.emit("prefect.deployment.updated", start, dep.resource(), related, {"updated_fields": [field_name], "updates": {field_name: updates}})
    else:
        down = s.emit("prefect.deployment.not-ready", start, dep.resource(), related)
        s.emit("prefect.deployment.ready", start + timedelta(seconds=rng.uniform(20, 280)), dep.resource(), related, follows=down)
    return s.events


def pool_story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    s = Story(rng)
    if rng.random() < 0.5:
        pool = rng.choice(world.pools)
        roll = rng.random()
        if roll < 0.3:
            s.emit("prefect.work-pool.updated", start, pool.resource(), [],
                   {"updated_fields": ["concurrency_limit"], "updates": {"concurrency_limit": {"from": 10, "to": rng.choice([5, 20, 50])}}})
        else:
            status = "paused" if roll < 0.4 else "not-ready"
            down = s.emit(f"prefect.work-pool.{status}", start, pool.resource(), [])
            s.emit("prefect.work-pool.ready", start + timedelta(seconds=rng.uniform(10, 290)), pool.resource(), [], follows=down)
    else:
        queue = rng.choice(world.queues)
        pool = queue.extra["pool"]
        resource = queue.resource()
        related = [pool.related("work-pool")]
        if rng.random() < 0.3:
            s.emit("prefect.work-queue.updated", start, resource, related,
                   {"updated_fields": ["priority"], "updates": {"priority": {"from": 1, "to": rng.randint(2, 10)}}})
        else:
            down = s.emit(f"prefect.work-queue.{rng.choice(['not-ready', 'paused'])}", start, resource, related)
            s.emit("prefect.work-queue.ready", start + timedelta(seconds=rng.uniform(10, 290)), resource, related, follows=down)
    return s.events


_order_numbers = itertools.count(100_000)


def order_story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    s = Story(rng)
    customer = world.customers[rng.randrange(10)] if rng.random() < 0.3 else rng.choice(world.customers[10:])
    number = next(_order_numbers) + rng.randrange(10**6) * 1000
    order = {"prefect.resource.id": f"acme.order.{number}", "prefect.resource.name": f"Order #{number}", "acme.channel": rng.choice(["web", "app", "store"])}
    related = [customer.related("customer", **({"acme.tier": "vip"} if "vip" in customer.id else {}))]
    total = round(rng.uniform(9, 900), 2)
    items = rng.randint(1, 8)
    created = s.emit("acme.order.created", start, order, related, {"total": total, "currency": "EUR", "items": items})
    if rng.random() < 0.9:
        paid = s.emit("acme.order.paid", start + timedelta(seconds=rng.uniform(5, 240)), order, related,
                      {"total": total, "method": rng.choice(["card", "paypal", "invoice"])}, follows=created)
        if rng.random() < 0.85:
            s.emit("acme.order.shipped", paid["occurred"] + timedelta(hours=rng.uniform(2, 30)), order,
                   [*related, {"prefect.resource.id": f"acme.carrier.{rng.choice(['dhl', 'ups', 'postnl'])}", "prefect.resource.role": "carrier"}],
                   {"tracking": f"JV{rng.randrange(10**9):09d}NL", "items": items}, follows=paid)
    return s.events


def custom_story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    s = Story(rng)
    if rng.random() < 0.65:
        name = rng.choice(PIPELINES)
        s.emit("acme.data-pipeline.completed", start,
               {"prefect.resource.id": f"acme.data-pipeline.{name}", "prefect.resource.name": name, "acme.team": "data"},
               [tag("etl")], {"rows": rng.randint(10_000, 20_000_000), "duration_s": round(rng.uniform(20, 3000), 1)})
    else:
        model = rng.choice(MODELS)
        version = f"{rng.randint(1, 4)}.{rng.randint(0, 30)}"
        s.emit("myteam.model.trained", start,
               {"prefect.resource.id": f"myteam.model.{model}", "prefect.resource.name": model, "myteam.model.version": version},
               [{"prefect.resource.id": rng.choice(ASSETS[-3:]), "prefect.resource.role": "dataset"}, tag("ml")],
               {"metrics": {"auc": round(rng.uniform(0.7, 0.95), 3), "loss": round(rng.uniform(0.1, 0.6), 3)}, "epochs": rng.randint(5, 80)})
    return s.events


def cloud_story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    """The rarer families: workspace transfers, webhooks, incidents, audit log entries."""
    s = Story(rng)
    roll = rng.random()
    workspace = {"prefect.resource.id": "prefect-cloud.workspace.3f2c8a1e-acme-prod", "prefect.resource.name": "acme/prod"}
    if roll < 0.15:
        begun = s.emit("prefect.workspace.transfer.started", start, workspace, [], {"target": "acme/prod-eu"})
        s.emit("prefect.workspace.transfer.completed", start + timedelta(seconds=rng.uniform(30, 280)), workspace, [],
               {"target": "acme/prod-eu", "resources": rng.randint(50, 400)}, follows=begun)
    elif roll < 0.55:
        hook = rng.choice(["github-push", "stripe-payments", "dbt-cloud"])
        s.emit("prefect-cloud.webhook.received", start,
               {"prefect.resource.id": f"prefect-cloud.webhook.{hook}", "prefect.resource.name": hook},
               [{**workspace, "prefect.resource.role": "workspace"}], {"method": "POST", "headers": {"content-type": "application/json"}})
    elif roll < 0.75:
        incident = {"prefect.resource.id": f"prefect-cloud.incident.{rand_uuid(rng)}", "prefect.resource.name": "Warehouse loads failing"}
        declared = s.emit("prefect-cloud.incident.declared", start, incident, [{**workspace, "prefect.resource.role": "workspace"}], {"severity": "high"})
        s.emit("prefect-cloud.incident.resolved", start + timedelta(seconds=rng.uniform(60, 290)), incident,
               [{**workspace, "prefect.resource.role": "workspace"}], {"severity": "high"}, follows=declared)
    else:
        automation = rng.choice(world.automations)
        action = rng.choice(["created", "updated"])
        s.emit(f"prefect-cloud.automation.{action}", start, automation.resource(),
               [{"prefect.resource.id": "prefect-cloud.actor.dana", "prefect.resource.name": "dana", "prefect.resource.role": "actor"}])
    return s.events


# How often each kind of story starts. Flow runs dominate (and bring heartbeats, task runs,
# infrastructure); everything else is background.
STORIES: list[tuple[Callable, int]] = [
    (flow_run_story, 56),
    (order_story, 22),
    (deployment_story, 6),
    (pool_story, 5),
    (custom_story, 6),
    (worker_session_story, 3),
    (cloud_story, 2),
]


def story(world: World, rng: random.Random, start: datetime) -> list[dict]:
    kind = rng.choices([f for f, _ in STORIES], weights=[w for _, w in STORIES])[0]
    return kind(world, rng, start)


def wire(event: dict) -> dict:
    """A generated event (its fields in a dict, `occurred` a datetime) in the wire shape."""
    return wire_shape(SimpleNamespace(**event, received=None))


# --- backfill and stream ------------------------------------------------------------------


def backfill_events(n: int, days: float, *, world: World | None = None, seed: int | None = None,
                    until: datetime | None = None) -> list[dict]:
    """About `n` events (exactly `n`, if the stories give at least that many) over the last `days`.

    Stories that run past `until` are cut there, as if they are still going on; since `follows`
    always points to an earlier event, every kept event's predecessor is kept too.
    """
    world = world or build_world()
    rng = random.Random(seed)
    until = until or datetime.now(timezone.utc)
    since = until - timedelta(days=days)
    span = (until - since).total_seconds()
    events: list[dict] = []
    while len(events) < n:
        start = since + timedelta(seconds=rng.uniform(0, span))
        events.extend(e for e in story(world, rng, start) if e["occurred"] <= until)
    events.sort(key=lambda e: e["occurred"])
    return _trim(events, n)


def _trim(events: list[dict], n: int) -> list[dict]:
    """The first n events in time order, minus any whose predecessor fell outside."""
    kept = events[:n]
    ids = {e["id"] for e in kept}
    result = []
    for e in kept:
        if e["follows"] and e["follows"] not in ids:
            ids.discard(e["id"])
            continue
        result.append(e)
    return result


def store_batches(events: list[dict], batch: int = 1000, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Validate and store events through the real ingest path; returns (new, duplicates)."""
    from django.db.models import F

    from .ingest import ingest
    from .models import Event
    from .schema import validate_event

    new = duplicates = 0
    for start in range(0, len(events), batch):
        clean = []
        for raw in events[start : start + batch]:
            event, problems = validate_event(wire(raw))
            if problems:
                raise ValueError(f"demo generated an invalid event {raw['event']}: {problems}")
            clean.append(event)
        result = ingest(clean)
        # Made up after the fact, but meant to read as if received live: no "2 d after it
        # occurred" on every backfilled event's page.
        Event.objects.filter(id__in=[e.id for e in clean]).update(received=F("occurred"))
        new += result.new
        duplicates += result.duplicates
        if progress:
            progress(start + len(clean))
    return new, duplicates


class Streamer:
    """Plays stories in real time: each tick returns the events whose time has come."""

    def __init__(self, rate: float, *, world: World | None = None, seed: int | None = None):
        self.rate = rate
        self.world = world or build_world()
        self.rng = random.Random(seed)
        self.queue: list[tuple[datetime, int, dict]] = []
        self.order = itertools.count()

    def due(self, now: datetime | None = None) -> list[dict]:
        now = now or datetime.now(timezone.utc)
        # Keep about ten seconds of events ahead: new stories start within the next two
        # seconds, while older ones keep producing their later states and heartbeats.
        horizon = now + timedelta(seconds=10)
        soon = sum(1 for at, _, _ in self.queue if at <= horizon)
        while soon < self.rate * 10:
            start = now + timedelta(seconds=self.rng.uniform(0, 2))
            for event in story(self.world, self.rng, start):
                heapq.heappush(self.queue, (event["occurred"], next(self.order), event))
                soon += event["occurred"] <= horizon
        out = []
        while self.queue and self.queue[0][0] <= now:
            out.append(heapq.heappop(self.queue)[2])
        return out


def post(url: str, key: str, events: list[dict], timeout: float = 30) -> dict:
    """POST events to /api/events; returns the answer ({"new": …, "duplicates": …})."""
    body = json.dumps([wire(e) for e in events]).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/api/events",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def stream(url: str, key: str, rate: float, *, seed: int | None = None, log: Callable[[str], None] = print,
           ticks: int | None = None) -> Iterator[dict]:
    """Post due events every second until interrupted (or for `ticks` seconds); yields answers."""
    streamer = Streamer(rate, seed=seed)
    pending: list[dict] = []
    tick = 0
    while ticks is None or tick < ticks:
        started = time.monotonic()
        pending.extend(streamer.due())
        if pending:
            try:
                answer = post(url, key, pending)
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:300]
                if e.code in (401, 403):
                    raise SystemExit(f"demo stream: {url} refused the API key ({e.code}): {detail}") from None
                log(f"demo stream: {e.code} {detail}; retrying")
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                # The server may still be starting (quickstart) or restarting: keep the events
                # and try again next second, so none are lost.
                log(f"demo stream: {url} not reachable ({getattr(e, 'reason', e)}); retrying")
            else:
                pending = []
                yield answer
        tick += 1
        time.sleep(max(0.0, 1 - (time.monotonic() - started)))
