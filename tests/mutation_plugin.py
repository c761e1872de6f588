"""A pytest plugin that breaks one thing on purpose: tests/test_mutations.py runs a test with it
to show that the test fails when the behaviour it names is broken.

EVENTFEED_MUTATION is JSON: {"module": …, "old": …, "new": …}. Once Django is set up, the module's
source is changed (`old` must occur exactly once) and every function whose code changed gets the
new code in place, so that the names other modules imported see the mutant too.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import types


def pytest_sessionstart(session) -> None:
    spec = os.environ.get("EVENTFEED_MUTATION")
    if not spec:
        return
    mutation = json.loads(spec)
    module = importlib.import_module(mutation["module"])
    source = inspect.getsource(module)
    if source.count(mutation["old"]) != 1:
        raise RuntimeError(f"the mutation's text occurs {source.count(mutation['old'])} times in {module.__name__}")
    mutant: dict = {"__name__": module.__name__, "__package__": module.__package__}
    exec(compile(source.replace(mutation["old"], mutation["new"]), module.__file__, "exec"), mutant)
    changed = 0
    for name, value in vars(module).items():
        new = mutant.get(name)
        if isinstance(value, types.FunctionType) and isinstance(new, types.FunctionType) and new.__code__ != value.__code__:
            value.__code__ = new.__code__
            changed += 1
    if not changed:
        raise RuntimeError(f"the mutation changed no function of {module.__name__}")
