"""The template sandbox: Prefect-style templates render; a bomb per engine feature fails within
its bound, with its reason, without the process growing; save-time checks refuse what they can."""

from __future__ import annotations

import resource
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eventfeed import sandbox
from eventfeed.sandbox import Limits, SandboxError, check, render

LIMITS = Limits(cpu_seconds=0.5, output=65_536)
CONTEXT = {
    "event": {"event": "acme.order.shipped", "resource": {"prefect.resource.id": "acme.order.9", "prefect.resource.name": "Order 9"},
              "payload": {"total": 12, "items": [{"sku": "A"}, {"sku": "B"}]}},
    "automation": {"name": "shipping"},
}

BOMBS = {
    # name: (template, the reason's words)
    "string multiplication": ('{{ "a" * 300000000 }}', "the operator * would make a value of 300000000 characters"),
    "list multiplication": ("{{ [0] * 300000000 }}", "the operator * would make a value"),
    "padding method": ('{{ event.resource["prefect.resource.id"].ljust(300000000) }}', "str.ljust() would make a value"),
    "padding filter": ('{{ "x"|center(300000000) }}', "the filter center would make a value"),
    "indent filter": ('{{ "x"|indent(300000000) }}', "the filter indent would make a value"),
    "percent width": ('{{ "%300000000d" % 1 }}', "the operator % would make a value"),
    "format filter width": ('{{ "%300000000d"|format(1) }}', "the filter format would make a value"),
    "format method width": ('{{ "{:>300000000}".format(1) }}', "str.format() would make a value"),
    "format method width from an argument": ('{{ "{:>{}}".format(1, 300000000) }}', "a width taken from the arguments"),
    "power": ("{{ 2 ** 1000000000 }}", "would make an integer of more than"),
    "huge range": ("{% for i in range(1000000000) %}{% endfor %}", "range() may have at most 1000 items"),
    "nested loops": ("{% for a in 'abcdefghij' * 5 %}{% for b in 'abcdefghij' * 5 %}{% for c in 'abcdefghij' * 5 %}"
                     "{% for d in 'abcdefghij' * 5 %}{% for e in 'abcdefghij' * 5 %}{% endfor %}{% endfor %}{% endfor %}"
                     "{% endfor %}{% endfor %}", "more than 0.5 s of CPU"),
    "exponential macro recursion": ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
                                    "more than 0.5 s of CPU"),
    "endless recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursed too deeply"),
    "doubling by concatenation": ('{% set ns = namespace(s="ab") %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}',
                                  "the operator ~ would make a value"),
    "doubling by addition": ("{% set ns = namespace(s=[1]) %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                             "the operator + would make a value"),
    "join with a large separator": ('{{ ("a" * 60000)|join("b" * 60000) }}', "the filter join would make a value"),
    "replace with a large text": ('{{ ("a" * 60000)|replace("a", "b" * 60000) }}', "the filter replace would make a value"),
    "batch filled to a huge size": ('{{ [1]|batch(300000000, "x")|list }}', "the filter batch would make a value"),
    "a set block written over and over": ('{% set big = "a" * 60000 %}{% set x %}{% for i in range(1000) %}{% for j in range(1000) %}'
                                          "{{ big }}{% endfor %}{% endfor %}{% endset %}", "wrote more than 1048576 characters"),
    "long output": ('{% for i in range(1000) %}{{ "a" * 1000 }}{% endfor %}', "output is longer than 65536 characters"),
}


def test_it_renders_prefect_style_templates():
    source = ('{{ event.resource["prefect.resource.id"] }} / {{ event.resource|label("prefect.resource.name") }} / '
              "{{ automation.name|upper }} / {{ event.payload.total * 2 }} / {% for i in event.payload['items'] %}{{ i.sku }}{% endfor %} / "
              "{{ event.payload.missing.deeper }} / {{ 1234567|humanize_intcomma }} / {{ event.payload|json }}")
    assert render(source, CONTEXT, limits=LIMITS) == (
        'acme.order.9 / Order 9 / SHIPPING / 24 / AB /  / 1,234,567 / {"total": 12, "items": [{"sku": "A"}, {"sku": "B"}]}')
    assert check(source) == []


@pytest.mark.parametrize("name", BOMBS)
def test_it_stops_a_template_bomb_within_its_bound(name):
    source, reason = BOMBS[name]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.thread_time()
    with pytest.raises(SandboxError) as refused:
        render(source, CONTEXT, limits=LIMITS)
    assert reason in refused.value.reason
    assert time.thread_time() - started < LIMITS.cpu_seconds + 0.5
    # Every bomb above would take more than 300 MB if it ran.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100_000


def test_it_keeps_another_thread_answering_while_a_bomb_renders():
    class Ping(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outcome = []
    bomb = threading.Thread(target=lambda: outcome.append(_reason(BOMBS["nested loops"][0])))
    bomb.start()
    import http.client

    slowest = 0.0
    try:
        while bomb.is_alive():
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
            conn.request("GET", "/")
            assert conn.getresponse().status == 204
            conn.close()
            slowest = max(slowest, time.monotonic() - started)
    finally:
        bomb.join()
        server.shutdown()
        server.server_close()
    assert "CPU" in outcome[0]
    assert slowest < 0.5


def _reason(source: str) -> str:
    try:
        render(source, CONTEXT, limits=LIMITS)
    except SandboxError as e:
        return e.reason
    return "rendered"


@pytest.mark.parametrize("name", ["string multiplication", "padding filter", "percent width", "power", "huge range",
                                  "indent filter", "batch filled to a huge size"])
def test_it_refuses_a_bomb_made_of_constants_when_saved(name):
    source, reason = BOMBS[name]
    [problem] = check(source)
    assert problem.startswith("line 1: ") and reason in problem


def test_it_refuses_bad_syntax_loaders_and_oversized_sources_when_saved():
    assert check("{% for %}") == ["line 1: Expected an expression, got 'end of statement block'"]
    assert check("a\n{% include 'other' %}") == ["line 2: templates cannot load other templates ({% include %})"]
    assert check("{{ x|no_such_filter }}") == ["line 1: No filter named 'no_such_filter'."]
    assert check("x" * 70_000) == ["is 70000 characters long; a template may have at most 65536"]
    assert check(42) == ["must be a string (a Jinja template)"]


def test_it_keeps_python_internals_out_of_reach():
    assert render("{{ event.__class__ }}{{ ''.__class__.__mro__ }}", CONTEXT) == ""
    with pytest.raises(SandboxError, match="not allowed in a template: access to attribute 'append'"):
        render("{% set l = [] %}{{ l.append(1) }}", CONTEXT)
    with pytest.raises(SandboxError, match="'lipsum' is undefined"):
        render("{{ lipsum(1000000) }}", CONTEXT)


def test_it_names_the_line_of_a_runtime_error():
    with pytest.raises(SandboxError) as refused:
        render("ok\n{{ 1 / 0 }}", CONTEXT)
    assert refused.value.reason == "line 2: ZeroDivisionError: division by zero"


def test_it_reads_its_limits_from_the_settings(settings):
    settings.EVENTFEED_TEMPLATE_MAX_OUTPUT = 10
    with pytest.raises(SandboxError, match="longer than 10 characters"):
        render("{{ 'a' * 11 }}", {})
    assert sandbox.default_limits().output == 10
