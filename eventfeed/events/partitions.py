"""Day partitions of the events and their resource rows, on PostgreSQL.

Both tables are partitioned by range of `occurred`, one UTC day per partition, and the two always
have the same days, so that retention drops a day of both at once. There is no DEFAULT partition:
rows in it would have to be moved out (under a lock on the whole table) before a partition for
their day could be created, and every partition created later would scan it. Instead a day's
partitions are created before anything is written to them: ahead of time by the worker, and on
demand by ingest for late, backfilled or future events, so that every supported time lands in a
partition of its own day.

SQLite has no partitions: every function here is a no-op there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import connection, transaction

from .models import Event, EventCount, EventResource

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
# (table, its event-name column, its time column), all partitioned alike by day. The counts are
# partitioned too: a day's minute buckets are ~70,000 rows per 50 names, too many to DELETE
# when the day's events are dropped in a millisecond. Every count bucket (an hour at most) lies
# inside the day of the events it counts.
TABLES = (
    (Event._meta.db_table, "event", "occurred"),
    (EventResource._meta.db_table, "event_name", "occurred"),
    (EventCount._meta.db_table, "event", "bucket"),
)
# Serialises partition DDL between processes (pg_advisory_xact_lock key: "evfp").
DDL_LOCK = 0x65766670

# Days known to have partitions, per process. A day dropped by another process stays here until
# a write to it fails; ingest then forgets the day and creates it again (see ingest._store).
_known: set[date] = set()


def enabled() -> bool:
    return connection.vendor == "postgresql"


def day_of(moment: datetime) -> date:
    return moment.astimezone(dt_timezone.utc).date()


def bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=dt_timezone.utc)
    return start, start + DAY


def partition_name(table: str, day: date) -> str:
    # Years 2 to 9998 are supported: four digits always.
    return f"{table}_p{day.year:04d}{day.month:02d}{day.day:02d}"


def _parse_day(name: str) -> date | None:
    digits = name.rpartition("_p")[2]
    if len(digits) != 8 or not digits.isdigit():
        return None
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def existing_days(table: str | None = None) -> set[date]:
    """Days with a partition of `table`, or of any of the partitioned tables."""
    with connection.cursor() as cursor:
        if table is not None:
            return existing_days_in(cursor, table)
        return set().union(*(existing_days_in(cursor, t) for t, _, _ in TABLES))


def name_indexes(cursor, table: str, day: date) -> None:
    """Name a partition's indexes after the parent's (`er_resource_occurred_p20261204`), so that
    query plans say which index of the model they use; PostgreSQL's own names are cut to 63
    characters from the column names."""
    partition = partition_name(table, day)
    cursor.execute(
        "SELECT c.relname, p.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE x.indrelid = to_regclass(%s)",
        [f'"{partition}"'],
    )
    suffix = partition.rpartition("_")[2]
    for child, parent in cursor.fetchall():
        wanted = f"{parent}_{suffix}"
        if child != wanted:
            cursor.execute(f'ALTER INDEX "{child}" RENAME TO "{wanted}"')


def name_all_indexes() -> None:
    """name_indexes() for every partition (after indexes were rebuilt on the parents)."""
    if not enabled():
        return
    with connection.cursor() as cursor:
        for day in existing_days():
            for table, _, _ in TABLES:
                name_indexes(cursor, table, day)


def forget(days: Iterable[date] | None = None) -> None:
    if days is None:
        _known.clear()
    else:
        _known.difference_update(days)


def ensure(days: Iterable[date]) -> list[date]:
    """Create the partitions of these days that do not exist yet; returns the days created.

    Cheap when every day is known to this process (no query). Creating a partition locks the
    parent table: done before ingest's own statements, under an advisory lock so that two
    processes never create the same day at once.
    """
    if not enabled():
        return []
    missing = set(days) - _known
    if not missing:
        return []
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DDL_LOCK])
        # A day counts as present when every table has it (IF NOT EXISTS fills in the others).
        present = set.intersection(*(existing_days_in(cursor, t) for t, _, _ in TABLES))
        for day in sorted(missing - present):
            start, end = bounds(day)
            for table, _, _ in TABLES:
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{partition_name(table, day)}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)',
                    [start, end],
                )
                name_indexes(cursor, table, day)
            created.append(day)
    _known.update(missing)
    if created:
        log.info("partitions: created %s", ", ".join(map(str, created)))
    return created


def ensure_ahead(now: datetime, days: int | None = None) -> list[date]:
    """Today's partitions and those of the next `days` days (EVENTFEED_PARTITIONS_AHEAD_DAYS)."""
    ahead = settings.EVENTFEED_PARTITIONS_AHEAD_DAYS if days is None else days
    today = day_of(now)
    return ensure(today + timedelta(days=i) for i in range(ahead + 1))


# A day's partitions are renamed with this suffix when they are detached, and dropped after.
GONE = "_gone"


def drop(days: list[date]) -> tuple[float, float]:
    """Remove whole days of events, resource rows and counts: no row is deleted, nothing to
    vacuum. Returns the seconds until the days were gone (and the tables unlocked), and the
    seconds their files then took to remove.

    Two transactions. The first detaches the days' partitions and renames them: a catalogue
    change, committed at once, after which no query sees the days. Dropping a partition locks
    its parent table (ACCESS EXCLUSIVE) until the commit, and the commit of a DROP removes the
    files: for 23 days of 2,000,000 events the kernel spent seconds freeing 3 GB of cached
    pages while every insert and query waited. The second drops the detached tables, which no
    other statement touches. Tables a process left detached when it died are dropped the next
    time (they carry GONE, so a day's partition is never mistaken for one).
    """
    import time

    started = time.perf_counter()
    names = {partition_name(table, day): table for day in days for table, _, _ in TABLES}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DDL_LOCK])
        for table, _, _ in TABLES:
            attached = set(_partitions_of(cursor, table))
            for name in sorted(n for n, t in names.items() if t == table and n in attached):
                cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"')
                cursor.execute(f'ALTER TABLE "{name}" RENAME TO "{name}{GONE}"')
    forget(days)
    detached = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace "
            "AND relname LIKE ANY(%s)",
            [[f"{table}\\_p%{GONE}" for table, _, _ in TABLES]],
        )
        gone = [row[0] for row in cursor.fetchall()]
        if gone:
            cursor.execute("DROP TABLE IF EXISTS " + ", ".join(f'"{name}"' for name in gone))
    return detached - started, time.perf_counter() - detached


def _partitions_of(cursor, parent: str) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
        [parent],
    )
    return [row[0] for row in cursor.fetchall()]


def keep_only(day: date, names: list[str]) -> None:
    """Replace a day's partitions by new ones holding only the events named `names`.

    How retention keeps the rows of a longer override (or drops those of a shorter one) when most
    of the day goes: the rows that stay are copied into a fresh table, which takes the old one's
    place. Copying the few rows kept costs far less than deleting the many that go (and then
    vacuuming them). Writers to that day wait for the copy; readers see the old partition until
    the swap commits.
    """
    start, end = bounds(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DDL_LOCK])
        for table, name_column, time_column in TABLES:
            old = partition_name(table, day)
            new = f"{old}_new"
            check = f"{old}_bounds"
            cursor.execute(f'LOCK TABLE "{old}" IN SHARE MODE')
            cursor.execute(f'CREATE TABLE "{new}" (LIKE "{table}" INCLUDING DEFAULTS)')
            cursor.execute(f'INSERT INTO "{new}" SELECT * FROM "{old}" WHERE "{name_column}" = ANY(%s)', [names])
            # With this constraint in place, ATTACH needs no scan to prove the rows belong.
            cursor.execute(
                f'ALTER TABLE "{new}" ADD CONSTRAINT "{check}" CHECK ("{time_column}" IS NOT NULL AND "{time_column}" >= %s AND "{time_column}" < %s)',
                [start, end],
            )
            cursor.execute(f'DROP TABLE "{old}"')
            cursor.execute(f'ALTER TABLE "{new}" RENAME TO "{old}"')
            # Attaching builds the parent's indexes (primary key included) on the new table.
            cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{old}" FOR VALUES FROM (%s) TO (%s)', [start, end])
            cursor.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT "{check}"')
            name_indexes(cursor, table, day)


def estimated_rows(day: date) -> int:
    """The planner's estimate of a day's events (instant; exact after ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE relname = %s",
                       [partition_name(Event._meta.db_table, day)])
        row = cursor.fetchone()
    return row[0] if row else 0


# -- turning the plain tables of an existing database into partitioned ones (migration 0008) ----

def partition_existing(schema_editor, models_: list, ahead: int = 3) -> None:
    """Rename each table, create its partitioned successor, create the partitions of every day
    stored (and of today and `ahead` days), copy the rows over, build the indexes, drop the old.

    `models_` are (model, time column) pairs, the first the events. Indexes and unique
    constraints are built after the copy: one build per partition is much cheaper than keeping
    them up to date row by row.
    """
    execute = schema_editor.execute
    with schema_editor.connection.cursor() as cursor:
        for model, column in models_:
            table = model._meta.db_table
            old = f"{table}_unpartitioned"
            execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
            execute(f'ALTER INDEX "{table}_pkey" RENAME TO "{old}_pkey"')
            for index in [*model._meta.indexes, *model._meta.constraints]:
                execute(f'ALTER INDEX IF EXISTS "{index.name}" RENAME TO "{index.name}_old"')
            execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING IDENTITY) PARTITION BY RANGE ("{column}")')
            # A partitioned table's primary key must contain the partition key.
            execute(f'ALTER TABLE "{table}" ADD PRIMARY KEY (id, "{column}")')
        days = existing_days_in(cursor, Event._meta.db_table) if models_[0][0]._meta.db_table != Event._meta.db_table else set()
        for model, column in models_:
            cursor.execute(f"SELECT DISTINCT (\"{column}\" AT TIME ZONE 'UTC')::date FROM \"{model._meta.db_table}_unpartitioned\"")
            days.update(row[0] for row in cursor.fetchall())
        today = datetime.now(dt_timezone.utc).date()
        days.update(today + timedelta(days=i) for i in range(ahead + 1))
        for day in sorted(days):
            start, end = bounds(day)
            for model, _ in models_:
                table = model._meta.db_table
                cursor.execute(
                    f'CREATE TABLE "{partition_name(table, day)}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)',
                    [start, end],
                )
        for model, _ in models_:
            table = model._meta.db_table
            old = f"{table}_unpartitioned"
            execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
            for index in model._meta.indexes:
                schema_editor.add_index(model, index)
            for constraint in model._meta.constraints:
                schema_editor.add_constraint(model, constraint)
            if model._meta.pk.get_internal_type() == "BigAutoField":
                execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), coalesce(max(id), 0) + 1, false) FROM \"{table}\"")
            execute(f'DROP TABLE "{old}"')
            execute(f'ANALYZE "{table}"')
            for day in days:
                name_indexes(cursor, table, day)
    forget()


def existing_days_in(cursor, parent: str) -> set[date]:
    return {d for name in _partitions_of(cursor, parent) if (d := _parse_day(name)) is not None}
