"""Wakes this process's action runner when a firing's action runs commit, so they start now
rather than at the runner's next poll. The service registers its runner here; the evaluator and
the debugging tools, below the service, only wake it."""

from __future__ import annotations

import os
from typing import Callable

# pid -> the runner's wake-up: a forked process has none until it starts its own service.
_runners: dict[int, Callable[[], None]] = {}


def register(wake: Callable[[], None]) -> None:
    _runners[os.getpid()] = wake


def wake_actions() -> None:
    """Called after a firing commits: run its actions now rather than at the next poll."""
    wake = _runners.get(os.getpid())
    if wake is not None:
        wake()
