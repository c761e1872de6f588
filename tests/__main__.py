"""`python -m tests`: the whole suite, on SQLite and then on PostgreSQL + Redis.

One pass runs pytest on SQLite with the in-memory channel layer (browser tests included); the
other runs the same suite against PostgreSQL and Redis when both answer, at the same time, its
output shown after the first's. When they do not answer, that pass is skipped with a loud
message, except under CI=true, where that is a failure. Extra arguments go to pytest in both
passes (`python -m tests -k websocket -x`).

Environment: TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; the test
database is that name prefixed with test_), TEST_REDIS_URL (default redis://127.0.0.1:6379/0),
EVENTFEED_TEST_SQLITE (the SQLite test database file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Well under CI's 90 minutes, so a hung pass reports FAILED with the other pass's results.
PASS_LIMIT_SECONDS = 45 * 60


@dataclass
class Outcome:
    name: str
    status: str  # passed, FAILED, SKIPPED
    detail: str = ""
    seconds: float = 0.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def postgres_problem(url: str) -> str | None:
    try:
        import psycopg
    except ImportError as e:
        return f"psycopg is not installed ({e})"
    try:
        # The server is what must answer: the named database need not exist, since Django creates
        # test_<name> through the maintenance database `postgres`.
        with psycopg.connect(url, dbname="postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # any reason it cannot be used is a reason to skip or fail
        return f"PostgreSQL at {url} does not answer: {str(e).strip().splitlines()[0]}"
    return None


def redis_problem(url: str) -> str | None:
    try:
        import redis
    except ImportError as e:
        return f"redis (the client) is not installed ({e})"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as e:
        return f"Redis at {url} does not answer: {e}"
    return None


class Pass:
    """One pytest run in a subprocess. Output goes to the terminal, or to a file that is
    printed when the pass ends, so that two passes can run at once without interleaving."""

    def __init__(self, name: str, env: dict[str, str], args: list[str], *, buffered: bool = False):
        self.name = name
        self.tmp = tempfile.TemporaryDirectory(prefix="eventfeed-tests-")
        self.report = Path(self.tmp.name) / "junit.xml"
        self.log = open(Path(self.tmp.name) / "output.txt", "w+") if buffered else None
        if not buffered:
            print(f"\n{'=' * 30} {name} {'=' * 30}", flush=True)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest", f"--junitxml={self.report}", "-o", "junit_family=xunit1", *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
        )

    def wait(self, deadline: float) -> Outcome:
        try:
            code = self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # pytest-timeout catches a test that hangs; this catches a pass that hangs outside
            # any test (a fixture's teardown, an interpreter that will not exit).
            self.process.kill()
            code = self.process.wait()
            print(f"\n{self.name}: stopped after {PASS_LIMIT_SECONDS // 60} minutes", flush=True)
        seconds = time.monotonic() - self.started
        if self.log:
            self.log.seek(0)
            print(f"\n{'=' * 30} {self.name} {'=' * 30}", flush=True)
            sys.stdout.write(self.log.read())
            self.log.close()
        counts = read_counts(self.report)
        self.tmp.cleanup()
        if code == 0:
            return Outcome(self.name, "passed", counts, seconds)
        reason = {1: "tests failed", 2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}.get(
            code, f"exit {code}"
        )
        return Outcome(self.name, "FAILED", f"{reason}; {counts}" if counts else reason, seconds)


def read_counts(report: Path) -> str:
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError):
        return ""
    suites = [root] if root.tag == "testsuite" else list(root)
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    parts = [f"{passed} passed"]
    parts += [f"{total[k]} {k}" for k in ("failures", "errors", "skipped") if total[k]]
    return ", ".join(parts)


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    # A developer's own settings must not leak into the suite: tests pick their services here.
    for name in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"):
        env.pop(name, None)
    env["DJANGO_SETTINGS_MODULE"] = "eventfeed.settings"
    return env


def main(args: list[str]) -> int:
    outcomes: list[Outcome] = []
    passes: list[Pass] = []

    database_url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    problems = [p for p in (postgres_problem(database_url), redis_problem(redis_url)) if p]
    name = "PostgreSQL + Redis"
    if problems:
        banner = "!" * 78
        verdict = "CI=true, so this is a FAILURE" if in_ci() else "SKIPPING the PostgreSQL + Redis pass"
        print(f"{banner}\n{verdict}:\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        print("  Start them (see .ci/run) or point TEST_DATABASE_URL / TEST_REDIS_URL at them.", file=sys.stderr)
        print(banner, file=sys.stderr, flush=True)
        outcomes.append(Outcome(name, "FAILED" if in_ci() else "SKIPPED", "; ".join(problems)))
    else:
        # The two passes share nothing (their own database, channel layer, ports), so they run
        # at the same time: the suite takes as long as the slower pass, not the sum.
        print(f"{name} pass running alongside; its output follows the SQLite pass.", flush=True)
        env = {**base_env(), "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        passes.append(Pass(name, env, args, buffered=True))
    passes.insert(0, Pass("SQLite + in-memory channel layer", base_env(), args))

    try:
        deadline = time.monotonic() + PASS_LIMIT_SECONDS
        outcomes[:0] = [p.wait(deadline) for p in passes]
    except KeyboardInterrupt:
        for p in passes:
            p.process.terminate()
        raise

    print(f"\n{'=' * 30} summary {'=' * 30}")
    for o in outcomes:
        took = f" in {o.seconds:.0f}s" if o.seconds else ""
        print(f"  {o.status:<8} {o.name}{took}: {o.detail}")
    failed = any(o.status == "FAILED" for o in outcomes)
    skipped = any(o.status == "SKIPPED" for o in outcomes)
    print("  RESULT: " + ("FAILED" if failed else "passed (PostgreSQL pass SKIPPED)" if skipped else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
