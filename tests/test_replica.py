"""Reads from a real streaming replica: a private primary (initdb) and a replica made from it with
pg_basebackup, both on free ports, started and stopped by this test. The scenario runs in its own
process (tests/replica_scenario.py), because the suite's own databases are fixed for its run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) if Path("/usr/lib/postgresql").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL's tools refuse to run as root: run them as the postgres user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def clusters():
    from django.db import connection

    if connection.vendor != "postgresql":
        # The clusters are the test's own whatever the suite runs on: once, in the PostgreSQL pass.
        pytest.skip("runs in the PostgreSQL pass")
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    base = Path(tempfile.mkdtemp(prefix="eventfeed-replica-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary, replica = base / "primary", base / "replica"
    ports = free_port(), free_port()
    started = []
    try:
        as_postgres(str(PG_BIN / "initdb"), "-D", str(primary), "-U", "postgres", "-A", "trust", "--no-sync")
        for data, port in ((primary, ports[0]),):
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / f"{port}.log"), "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", "start")
            started.append(data)
        as_postgres(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres", "-c", "CREATE DATABASE evf")
        as_postgres(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres",
                    "-D", str(replica), "-R", "-X", "stream", "--no-sync")
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(replica), "-w", "-l", str(base / f"{ports[1]}.log"), "-o",
                    f"-p {ports[1]} -k {base} -c listen_addresses=127.0.0.1 -c hot_standby=on", "start")
        started.append(replica)
        yield {"primary": f"postgres://postgres@127.0.0.1:{ports[0]}/evf", "replica": f"postgres://postgres@127.0.0.1:{ports[1]}/evf"}
    finally:
        for data in reversed(started):
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def run(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_it_reads_the_replica_and_falls_back_to_the_primary_while_it_lags(clusters):
    env = {**os.environ, "DATABASE_URL": clusters["primary"], "DATABASE_READ_URL": clusters["replica"],
           "REPLICA_ADMIN_URL": clusters["replica"].replace("/evf", "/postgres"), "DATABASE_POOL": "false"}
    env.pop("REDIS_URL", None)
    migrate = run(env, "manage.py", "migrate", "-v", "0")
    assert migrate.returncode == 0, migrate.stderr
    scenario = run(env, "tests/replica_scenario.py")
    print(scenario.stdout)
    assert scenario.returncode == 0, scenario.stdout + scenario.stderr
    assert "all steps passed" in scenario.stdout


def test_it_never_migrates_the_replica_and_refuses_a_read_url_that_is_not_postgres(clusters):
    env = {**os.environ, "DATABASE_URL": clusters["primary"], "DATABASE_READ_URL": clusters["replica"]}
    r = run(env, "manage.py", "migrate", "--database", "replica", "-v", "0")
    # The router allows no migration on the replica: nothing is written there (it would fail).
    assert r.returncode == 0, r.stderr
    bad = run({**env, "DATABASE_READ_URL": "sqlite:///x.sqlite3"}, "manage.py", "check")
    assert bad.returncode != 0 and "DATABASE_READ_URL must be a postgres:// URL" in bad.stderr
