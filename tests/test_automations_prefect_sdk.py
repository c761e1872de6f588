"""Prefect's own SDK (`prefect.automations.Automation`) against our /api/automations/."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from eventfeed.automations.models import Automation
from eventfeed.events.models import ApiKey
from tests.browser.conftest import asgi_server  # noqa: F401  (the live server fixture)

if importlib.util.find_spec("prefect") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("prefect is not installed: install the test extra (pip install -e '.[test]')")
    pytest.skip("prefect is not installed (pip install -e '.[test]')", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = """
from prefect.automations import Automation
from prefect.events.actions import DoNothing
from prefect.events.schemas.automations import EventTrigger, Posture

trigger = EventTrigger(expect={"acme.sdk"}, match={"prefect.resource.id": "acme.*"}, for_each={"prefect.resource.id"},
                       posture=Posture.Reactive, threshold=2, within=60)
created = Automation(name="from the sdk", trigger=trigger, actions=[DoNothing()]).create()
read = Automation.read(id=created.id)
assert read.name == "from the sdk" and read.trigger.threshold == 2 and read.trigger.for_each == {"prefect.resource.id"}, read
read.disable()
assert Automation.read(id=created.id).enabled is False
print(created.id)
"""


def test_it_creates_reads_and_disables_an_automation_with_the_prefect_sdk(asgi_server, tmp_path):  # noqa: F811
    _, key = ApiKey.create("prefect sdk")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=f"{asgi_server}/api", PREFECT_API_AUTH_STRING=key, PREFECT_HOME=str(tmp_path / "home"),
               PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false", DO_NOT_TRACK="1")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    automation = Automation.objects.get(pk=result.stdout.strip().splitlines()[-1])
    assert automation.enabled is False
    assert automation.trigger["expect"] == ["acme.sdk"] and automation.actions == [{"type": "do-nothing"}]
