"""Synthetic events at benchmark scale, loaded with COPY.

The shape follows the seeds' catalogue: ~50 event names with a skewed (Zipf-like) frequency,
~20,000 primary resources, ~5 related resources per event (flow, deployment, work pool, work
queue, tags), payloads of a few hundred bytes. Every value is deterministic for a seed, so the
benchmark's query cases name resources that exist.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

from django.db import connection

from eventfeed.events import partitions
from eventfeed.events.ingest import EPOCH, rollup_counts
from eventfeed.events.models import Event, EventCount, EventResource, resource_rows, words_sql
from eventfeed.events.schema import search_words

STATES = ["Scheduled", "Pending", "Running", "Completed", "Failed", "Cancelled", "Retrying", "Late",
          "AwaitingRetry", "Paused", "Cancelling", "Suspended", "AwaitingConcurrencySlot", "Crashed"]
# Most frequent first; frequency of the n-th name ∝ 1 / (n + 1) ** 1.1.
NAMES = (
    ["prefect.flow-run.heartbeat", "prefect.task-run.Running", "prefect.task-run.Completed",
     "prefect.flow-run.Running", "prefect.flow-run.Completed", "prefect.flow-run.Pending",
     "prefect.flow-run.Scheduled", "prefect.kubernetes.pod.running", "prefect.worker.submitted-flow-run",
     "prefect.worker.executed-flow-run", "prefect.kubernetes.pod.pending", "prefect.kubernetes.pod.succeeded",
     "prefect.concurrency-limit.acquired", "prefect.concurrency-limit.released", "prefect.task-run.Pending",
     "prefect.flow-run.Failed", "acme.order.created", "acme.order.paid", "acme.order.shipped",
     "prefect.ecs.task.running", "prefect.ecs.task.pending", "prefect.ecs.task.stopped", "prefect.artifact.created",
     "prefect.asset.referenced", "prefect.asset.materialization.succeeded", "prefect.docker.container.running",
     "prefect.docker.container.exited", "prefect.task-run.Failed", "prefect.flow-run.Retrying",
     "prefect.flow-run.Late", "prefect.deployment.updated", "prefect.work-queue.ready", "prefect.work-pool.ready",
     "prefect.block.s3-bucket.loaded", "prefect.flow-run.pull-step.executed", "prefect.worker.started",
     "prefect.worker.stopped", "prefect.automation.triggered", "prefect.automation.action.triggered",
     "prefect.automation.action.executed", "prefect.flow-run.Cancelled", "prefect.kubernetes.pod.failed",
     "prefect.asset.materialization.failed", "prefect.deployment.created", "myteam.model.trained",
     "acme.data-pipeline.completed", "prefect.flow-run.pull-step.failed", "prefect.automation.action.failed",
     "prefect.runner.cancelled-flow-run", "prefect.flow-run.Crashed"]
)
WEIGHTS = [1 / (n + 1) ** 1.1 for n in range(len(NAMES))]
WORDS = ["ok", "retry", "upstream", "batch", "rows", "partition", "s3", "warehouse", "snapshot", "ingest",
         "transform", "export", "cache", "shard", "compaction", "checkpoint"]

FLOW_RUNS, TASK_RUNS, WORKERS, PODS, OTHERS = 9_000, 6_000, 200, 3_000, 1_800
FLOWS, DEPLOYMENTS, POOLS, QUEUES, TAGS = 200, 400, 8, 40, 60


def zipf_index(rng: random.Random, n: int, s: float = 1.1) -> int:
    """An index in [0, n) where small indexes are much more frequent."""
    return min(n - 1, int(n ** rng.random() ** s) - 1) if n > 1 else 0


def primary(rng: random.Random, name: str) -> dict[str, str]:
    kind = name.split(".")[1]
    if kind == "flow-run":
        i = rng.randrange(FLOW_RUNS)
        state = name.rsplit(".", 1)[1]
        return {"prefect.resource.id": f"prefect.flow-run.fr-{i:05d}", "prefect.resource.name": f"run-{i}",
                "prefect.state-name": state, "prefect.state-type": state.upper(), "prefect.run-count": "1"}
    if kind == "task-run":
        i = rng.randrange(TASK_RUNS)
        return {"prefect.resource.id": f"prefect.task-run.tr-{i:05d}", "prefect.resource.name": f"task-{i}"}
    if kind == "worker":
        i = zipf_index(rng, WORKERS)
        return {"prefect.resource.id": f"prefect.worker.kubernetes.worker-{i}", "prefect.resource.name": f"worker-{i}",
                "prefect.worker-type": "kubernetes"}
    if kind == "kubernetes":
        i = rng.randrange(PODS)
        return {"prefect.resource.id": f"prefect.kubernetes.pod.pod-{i:05d}", "prefect.resource.name": f"pod-{i}",
                "kubernetes.namespace": "prefect"}
    i = rng.randrange(OTHERS)
    return {"prefect.resource.id": f"{name.rsplit('.', 1)[0]}.obj-{i:04d}", "prefect.resource.name": f"{kind}-{i}"}


def related(rng: random.Random) -> list[dict[str, str]]:
    pool = 0 if rng.random() < 0.5 else rng.randrange(1, POOLS)
    out = [
        {"prefect.resource.id": f"prefect.flow.flow-{zipf_index(rng, FLOWS)}", "prefect.resource.role": "flow"},
        {"prefect.resource.id": f"prefect.deployment.dep-{zipf_index(rng, DEPLOYMENTS)}", "prefect.resource.role": "deployment"},
        {"prefect.resource.id": f"prefect.work-pool.pool-{pool}", "prefect.resource.role": "work-pool",
         "prefect.work-pool.type": "kubernetes"},
        {"prefect.resource.id": f"prefect.work-queue.queue-{zipf_index(rng, QUEUES)}", "prefect.resource.role": "work-queue"},
    ]
    for t in {zipf_index(rng, TAGS) for _ in range(rng.randint(0, 2))}:
        out.append({"prefect.resource.id": f"prefect.tag.tag-{t}", "prefect.resource.role": "tag"})
    return out


def payload(rng: random.Random) -> dict:
    words = " ".join(rng.choice(WORDS) for _ in range(12))
    message = words if rng.random() > 0.002 else words + " timeout exceeded"
    return {
        "intended": {"from": "RUNNING", "to": "COMPLETED"},
        "validated_state": {"type": "COMPLETED", "name": "Completed", "message": message},
        "metrics": {"rows": rng.randrange(10**6), "duration_ms": rng.randrange(10**5), "attempt": rng.randrange(3)},
        "host": f"node-{rng.randrange(64)}.cluster.internal",
    }


def generate(n: int, days: float, seed: int, until: datetime):
    """(event row, resource rows) tuples, oldest first."""
    rng = random.Random(seed)
    span = days * 86400
    start = until - timedelta(seconds=span)
    step = span / n
    names = rng.choices(NAMES, weights=WEIGHTS, k=n)
    dumps = json.dumps
    for i in range(n):
        occurred = start + timedelta(seconds=i * step + rng.random() * step)
        name = names[i]
        res, rel, pay = primary(rng, name), related(rng), payload(rng)
        event_id = uuid.UUID(int=rng.getrandbits(128))
        event_row = (event_id, occurred, occurred, name, res["prefect.resource.id"], dumps(res), dumps(rel), dumps(pay),
                     None, words_sql(search_words(name, res, rel, pay), "postgresql"))
        rows = [(event_id, occurred, name, rid, role, dumps(labels)) for rid, role, labels in resource_rows(res, rel)]
        yield event_row, rows


def load(n: int, days: float = 30, seed: int = 1, log=print) -> None:
    """Replace the stored events with n synthetic ones: indexes dropped, COPY, indexes rebuilt,
    and the per-minute/quarter-hour/hour counts (EventCount) that ingest would have kept, so
    that what reads the rollups (histograms, the names picker, facets, totals) is measured as it
    runs in production rather than on an empty rollup."""
    until = datetime.now(timezone.utc)
    models = (Event, EventResource)
    with connection.schema_editor() as editor:
        for model in models:
            for index in model._meta.indexes:
                editor.remove_index(model, index)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Event._meta.db_table}, {EventResource._meta.db_table}, {EventCount._meta.db_table}")
    first = partitions.day_of(until - timedelta(days=days))
    partitions.ensure(first + timedelta(days=i) for i in range((partitions.day_of(until) - first).days + 1))
    raw = connection.connection
    started = time.monotonic()
    event_cols = "id, occurred, received, event, resource_id, resource, related, payload, follows, words"
    res_cols = "event_id, occurred, event_name, resource_id, role, labels"
    batch = 100_000
    done = 0
    rows = generate(n, days, seed, until)
    occurred_names: Counter = Counter()
    while done < n:
        chunk = [next(rows) for _ in range(min(batch, n - done))]
        occurred_names.update((event_row[1].replace(second=0, microsecond=0), event_row[3]) for event_row, _ in chunk)
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {Event._meta.db_table} ({event_cols}) FROM STDIN") as copy:
                for event_row, _ in chunk:
                    copy.write_row(event_row)
            with cursor.copy(f"COPY {EventResource._meta.db_table} ({res_cols}) FROM STDIN") as copy:
                for _, resource_rows_ in chunk:
                    for row in resource_rows_:
                        copy.write_row(row)
        raw.commit()
        done += len(chunk)
        log(f"  loaded {done:,} events ({done / (time.monotonic() - started):,.0f}/s)")
    counts = rollup_counts(occurred_names)
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {EventCount._meta.db_table} (width, bucket, event, count) FROM STDIN") as copy:
            for (width, bucket, name), count in counts.items():
                copy.write_row((width, EPOCH + timedelta(seconds=bucket), name, count))
    raw.commit()
    log(f"  counted {len(counts):,} rollup rows (EventCount)")
    log("  building indexes…")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
    with connection.schema_editor() as editor:
        for model in models:
            for index in model._meta.indexes:
                t = time.monotonic()
                editor.add_index(model, index)
                log(f"    {index.name}: {time.monotonic() - t:.0f} s")
    partitions.name_all_indexes()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Event._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {EventResource._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {EventCount._meta.db_table}")
    log(f"  loaded and indexed in {time.monotonic() - started:.0f} s")
