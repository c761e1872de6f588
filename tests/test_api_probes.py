"""What the Prefect SDK asks before it sends anything, and JSON for every other /api/ path."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_it_answers_the_prefect_api_version(client):
    response = client.get("/api/admin/version")
    assert response.status_code == 200 and response.json() == "3.9.1"


def test_it_answers_health(client):
    assert client.get("/api/health").json() is True


def test_it_tells_the_sdk_that_csrf_protection_is_off(client):
    # The SDK's exact test before it stops asking for a token.
    response = client.get("/api/csrf-token?client=abc")
    assert response.status_code == 422 and "CSRF protection is disabled." in response.content.decode()


@pytest.mark.parametrize("path", ["/api/flows/", "/api/deployments/filter", "/api/flow_runs/abc", "/api/"])
def test_it_answers_json_for_any_other_api_path(client, path):
    response = client.post(path, {}, content_type="application/json")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["detail"]


def test_it_refuses_a_write_to_the_version(client):
    assert client.post("/api/admin/version").status_code == 405
