"""Running the real Prefect SDK and CLI against a live server, each in a subprocess as a
producer would: the SDK's settings are process-wide and its events worker is a thread."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


def require_prefect() -> None:
    """Skip the module without the test extra, but never in CI."""
    if importlib.util.find_spec("prefect") is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("prefect is not installed: install the test extra (pip install -e '.[test]')")
        pytest.skip("prefect is not installed (pip install -e '.[test]')", allow_module_level=True)


def sdk_env(home: Path, **settings: str) -> dict:
    """The environment without the caller's PREFECT_ settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        # Never start a temporary Prefect server of its own, never phone home.
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
        DO_NOT_TRACK="1",
        **settings,
    )
    return env


def run_python(script: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)


def run_cli(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    prefect = Path(sys.executable).with_name("prefect")
    # Wide enough that rich does not wrap names in its tables.
    return subprocess.run([str(prefect), *args], env=env | {"COLUMNS": "250"}, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
