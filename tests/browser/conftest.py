"""Browser tests: a real Daphne server (the project's ASGI app, in its own process, on the test
database) and Debian's chromium driven by Playwright."""

from __future__ import annotations

import multiprocessing
import os
import time
from functools import partial

import pytest
from channels.testing.live import make_application
from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.test import Client

CHROMIUM = "/usr/bin/chromium"
# Chromium's background services try the network at start; this machine has none.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop on the test's thread; the tests' own ORM calls
# (creating users and events) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
    # Browser tests last: Playwright's sync API keeps an event loop running on the main thread
    # while the session-scoped browser is open, and pytest-asyncio cannot run a test after that.
    items.sort(key=lambda item: "tests/browser/" in str(item.fspath))


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from playwright.sync_api import Page

    Page.wait_for_function = wait_for_function_without_eval
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # Every page the tests open reports what chromium refused under the site's CSP.
        new_context, new_page = browser.new_context, browser.new_page
        browser.new_context = lambda *args, **kwargs: watch_csp(new_context(*args, **kwargs))
        browser.new_page = lambda *args, **kwargs: watch_csp(new_page(*args, **kwargs))
        yield browser
        browser.close()


def wait_for_function_without_eval(page, expression: str, *, arg=None, timeout: float | None = None, polling=None):
    """Page.wait_for_function, polled through page.evaluate.

    Playwright's own runs `eval(expression)` inside the page, which the site's CSP (no
    'unsafe-eval') refuses; page.evaluate goes through the DevTools protocol, which the CSP does
    not govern. Installed on Page so that every browser test keeps its usual call."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + (30_000 if timeout is None else timeout) / 1000
    while True:
        result = page.evaluate(expression, arg)
        if result:
            return result
        if time.monotonic() > deadline:
            raise PlaywrightTimeout(f"wait_for_function: {expression!r} stayed false for {timeout or 30_000:.0f} ms")
        page.wait_for_timeout(polling if isinstance(polling, (int, float)) else 50)


# Chromium's console messages about Content-Security-Policy violations in the current test.
CSP_VIOLATIONS: list[str] = []


def watch_csp(target):
    """Collect a page's or a context's CSP violations ("Executing inline script violates the
    following Content Security Policy directive …", "Refused to load the stylesheet …")."""
    target.on("console", lambda message: CSP_VIOLATIONS.append(f"{message.location.get('url')}: {message.text}")
              if "Content Security Policy" in message.text else None)
    return target


@pytest.fixture(autouse=True)
def no_csp_violation():
    """A browser test fails when chromium refused anything under the CSP: the page broke it."""
    CSP_VIOLATIONS.clear()
    yield
    violations, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


def app_on_test_database(database_name: str):
    """The project's ASGI app on the test database, built in the server process.

    The name is set before the app is imported: the app starts the automation evaluator, which
    must not see the settings' own database.
    """
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = database_name
    return make_application(static_wrapper=ASGIStaticFilesHandler)


class SpawnedDaphneProcess(DaphneProcess):
    """Daphne in a fresh interpreter rather than a fork of the test process.

    A fork inherits the test process's threads' state without the threads: after a test has used
    database_sync_to_async, asgiref's executor in the child waits forever for a worker thread
    that was not copied, and the server never answers a websocket handshake.
    """

    _start_method = "spawn"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ctx = multiprocessing.get_context("spawn")
        self.port = ctx.Value("i", self.port.value)
        self.ready = ctx.Event()
        self.errors = ctx.Queue()

    @staticmethod
    def _Popen(process_obj):
        return multiprocessing.get_context("spawn").Process._Popen(process_obj)


def serve(django_db_blocker):
    """Yield the URL of the project's ASGI app served by Daphne on a free port of 127.0.0.1."""
    from django.db import connection

    with django_db_blocker.unblock():
        # The new interpreter reads the settings afresh; point it at the test database.
        process = SpawnedDaphneProcess("127.0.0.1", partial(app_on_test_database, connection.settings_dict["NAME"]))
        process.start()
        if not process.ready.wait(timeout=30):
            raise RuntimeError("Daphne did not start")
        url = f"http://127.0.0.1:{process.port.value}"
        yield url
        process.terminate()
        process.join()


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker):
    """The project's ASGI application served by Daphne on a free port of 127.0.0.1."""
    yield from serve(django_db_blocker)


@pytest.fixture
def signed_in_page(browser, asgi_server, transactional_db, django_user_model):
    """A fresh browser page whose session belongs to a signed-in user."""
    user = django_user_model.objects.create_user("operator", password="operator-password-1")
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}])
    page = context.new_page()
    page.server = asgi_server
    yield page
    context.close()


@pytest.fixture
def open_page(browser, asgi_server, transactional_db, django_user_model):
    """A factory of signed-in pages with a chosen viewport, colour scheme and time zone:
    `open_page(width=390, height=844, scheme="dark", zone="America/New_York")`."""
    user = django_user_model.objects.create_user("viewer", password="viewer-password-1")
    client = Client()
    client.force_login(user)
    contexts = []

    def make(width: int = 1440, height: int = 900, scheme: str = "light", zone: str = "UTC"):
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme, timezone_id=zone)
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}])
        contexts.append(context)
        page = context.new_page()
        page.server = asgi_server
        page.user = user
        return page

    yield make
    for context in contexts:
        context.close()


# Every issue-16 behaviour is shown at both sizes and in both colour schemes.
LOOKS = [
    pytest.param({"width": 1440, "height": 900, "scheme": "light"}, id="desktop-light"),
    pytest.param({"width": 1440, "height": 900, "scheme": "dark"}, id="desktop-dark"),
    pytest.param({"width": 390, "height": 844, "scheme": "light"}, id="phone-light"),
    pytest.param({"width": 390, "height": 844, "scheme": "dark"}, id="phone-dark"),
]


@pytest.fixture(params=LOOKS)
def look(request) -> dict:
    return request.param
