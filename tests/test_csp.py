"""The security headers: a CSP on every response, and what `check --deploy` asks for in production."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from eventfeed.csp import POLICY

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", ["/accounts/login/", "/events/", "/automations/", "/api/health", "/no-such-page"])
def test_it_sends_the_policy_and_django_s_headers_on_every_response(owner_client, path):
    response = owner_client.get(path)
    assert response["Content-Security-Policy"] == POLICY
    assert "script-src 'self';" in POLICY and "style-src 'self';" in POLICY and "unsafe" not in POLICY
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin" and response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_it_has_no_inline_script_style_or_handler_in_any_template():
    import re

    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.I)
    found = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in (ROOT / "templates").rglob("*.html")
             for m in inline.finditer(path.read_text())]
    assert found == []


def test_it_passes_check_deploy_in_production():
    # The browser tests allow async-unsafe ORM calls in this process; a deployment does not.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SECURE_", "SESSION_", "CSRF_")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="feed.example.com")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
