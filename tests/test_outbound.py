"""The guarded outbound client: an SSRF matrix against a real local HTTP server (each spelling
of a refused address, names resolving to one through a test resolver, redirects), the allowlist,
and the connection going to the address that was checked."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eventfeed import outbound
from eventfeed.outbound import Allow, OutboundRefused


class Target(BaseHTTPRequestHandler):
    seen: list = []
    redirect_to: str | None = None

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("Host")))
        if self.path == "/redirect" and type(self).redirect_to:
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to)
            self.end_headers()
            return
        self.send_response(500 if self.path == "/fail" else 200)
        self.end_headers()
        self.wfile.write(b"secret internal answer")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def target_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def target(target_server):
    Target.seen, Target.redirect_to = [], None
    return Target, target_server


def resolver(table: dict[str, list[str]]):
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return table[host]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize("host, reason", [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    ("2130706433", "127.0.0.1 is a loopback address"),
    # httpx reads no octal: refused as not a URL before any lookup.
    ("0177.0.0.1", "is not a valid URL (Invalid IPv4 address: '0177.0.0.1')"),
    ("0x7f.1", "127.0.0.1 is a loopback address"),
    ("0x7f000001", "127.0.0.1 is a loopback address"),
    ("127.1", "127.0.0.1 is a loopback address"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1 is a loopback address (127.0.0.1) written as IPv6"),
    ("[64:ff9b::7f00:1]", "is a loopback address (127.0.0.1) written as IPv6"),
    ("0.0.0.0", "0.0.0.0 is an unspecified address"),
    ("[::]", ":: is an unspecified address"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("[fe80::1]", "fe80::1 is a link-local address"),
    ("10.0.0.1", "10.0.0.1 is a private address"),
    ("192.168.1.1", "192.168.1.1 is a private address"),
    ("172.16.0.1", "172.16.0.1 is a private address"),
    ("100.64.0.1", "100.64.0.1 is not a public address"),
    ("[fd00::1]", "fd00::1 is a unique-local address"),
    ("224.0.0.1", "224.0.0.1 is a multicast address"),
    ("[ff02::1]", "ff02::1 is a multicast address"),
    ("localhost", "localhost resolves to "),
])
def test_it_refuses_every_spelling_of_an_address_that_is_not_public(target, host, reason):
    seen, port = target
    with pytest.raises(OutboundRefused) as refused:
        outbound.request("GET", f"http://{host}:{port}/", allow=Allow(), timeout=2)
    assert reason in refused.value.reason
    assert seen.seen == []


def test_it_refuses_a_name_that_resolves_to_loopback_or_to_any_private_address(target):
    seen, port = target
    for answers in (["127.0.0.1"], ["93.184.216.34", "10.1.2.3"]):
        with pytest.raises(OutboundRefused, match=f"evil.example resolves to {answers[-1]}"):
            outbound.request("GET", f"http://evil.example:{port}/", allow=Allow(), resolver=resolver({"evil.example": answers}))
    assert seen.seen == []


def test_it_connects_to_the_address_it_checked_with_the_original_host_header(target):
    seen, port = target
    # A rebinding DNS server: the first answer is allowed, a second lookup would be private.
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])
    resolve = resolver({})
    resolve_once = lambda host, p: resolve.calls.append(host) or next(answers)  # noqa: E731
    response = outbound.request("GET", f"http://hooks.example:{port}/ok", allow=Allow.parse(["127.0.0.0/8"]),
                                resolver=resolve_once)
    assert response.status_code == 200 and response.allowed
    assert seen.seen == [("/ok", f"hooks.example:{port}")]
    assert resolve.calls == ["hooks.example"]


def test_it_checks_every_redirect_hop(target):
    seen, port = target
    allow = Allow.parse(["hooks.example"])
    resolve = resolver({"hooks.example": ["127.0.0.1"]})
    seen.redirect_to = f"http://127.0.0.1:{port}/secret"
    with pytest.raises(OutboundRefused, match="127.0.0.1 is a loopback address"):
        outbound.request("GET", f"http://hooks.example:{port}/redirect", allow=allow, resolver=resolve)
    assert seen.seen == [("/redirect", f"hooks.example:{port}")]
    seen.redirect_to = f"http://hooks.example:{port}/landed"
    response = outbound.request("GET", f"http://hooks.example:{port}/redirect", allow=allow, resolver=resolve)
    assert response.status_code == 200 and seen.seen[-1] == ("/landed", f"hooks.example:{port}")


def test_it_opens_what_the_allowlist_names_by_cidr_and_by_host_name(target, settings):
    seen, port = target
    settings.EVENTFEED_OUTBOUND_ALLOW = ["127.0.0.0/8", "*.internal.example"]
    assert outbound.request("GET", f"http://2130706433:{port}/a").status_code == 200
    resolve = resolver({"alerts.internal.example": ["10.0.0.5"]})
    allow = outbound.allowlist()
    assert allow.host("alerts.internal.example") and not allow.host("internal.example.evil")
    with pytest.raises(OutboundRefused, match=r"\[::1\]|::1 is a loopback"):
        outbound.request("GET", f"http://[::1]:{port}/", timeout=2)
    assert outbound.check("alerts.internal.example", 80, allow=allow, resolver=resolve) == ("10.0.0.5", True)


def test_it_tells_the_caller_whether_the_body_may_be_shown(target):
    seen, port = target
    response = outbound.request("GET", f"http://127.0.0.1:{port}/fail", allow=Allow.parse(["127.0.0.1"]))
    assert (response.status_code, response.text, response.allowed) == (500, "secret internal answer", True)


def test_it_refuses_literal_addresses_without_resolving_for_save_time_checks():
    assert outbound.refusal("http://0x7f.1/hook", allow=Allow()) == (
        "127.0.0.1 is a loopback address; set EVENTFEED_OUTBOUND_ALLOW to allow it")
    assert outbound.refusal("http://127.0.0.1/hook", allow=Allow.parse(["127.0.0.1/32"])) is None
    assert outbound.refusal("https://hooks.example.com/x", allow=Allow()) is None


def test_it_pins_a_library_that_connects_by_itself_to_the_address_it_checked(target):
    import socket

    import requests

    seen, port = target
    # A rebinding DNS server: the first answer is allowed, a second lookup would be private.
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])
    resolve = resolver({})
    resolve_once = lambda host, p: resolve.calls.append(host) or next(answers)  # noqa: E731
    with outbound.guarded(allow=Allow.parse(["127.0.0.0/8"]), resolver=resolve_once) as guard:
        response = requests.get(f"http://hooks.example:{port}/ok", timeout=5)
    assert response.status_code == 200 and guard.refused == []
    assert seen.seen == [("/ok", f"hooks.example:{port}")] and resolve.calls == ["hooks.example"]
    # Outside the block the system resolves as before.
    assert socket.getaddrinfo("127.0.0.1", port)[0][4][0] == "127.0.0.1"


def test_it_checks_every_connection_a_guarded_library_opens_redirects_included(target):
    import requests

    seen, port = target
    seen.redirect_to = f"http://127.0.0.1:{port}/secret"
    with outbound.guarded(allow=Allow.parse(["hooks.example"]), resolver=resolver({"hooks.example": ["127.0.0.1"]})) as guard:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://hooks.example:{port}/redirect", timeout=5)
    assert guard.refused == ["127.0.0.1 is a loopback address; set EVENTFEED_OUTBOUND_ALLOW to allow it"]
    assert seen.seen == [("/redirect", f"hooks.example:{port}")]


def test_it_offers_a_guarded_library_every_checked_address_of_the_family_it_asks_for(target):
    import socket

    answers = resolver({"dual.example": ["2001:db8::1", "93.184.216.34"]})
    with outbound.guarded(allow=Allow.parse(["2001:db8::/32"]), resolver=answers):
        assert [a[4][0] for a in socket.getaddrinfo("dual.example", 443, socket.AF_INET, socket.SOCK_STREAM)] == ["93.184.216.34"]
        assert {a[4][0] for a in socket.getaddrinfo("dual.example", 443, 0, socket.SOCK_STREAM)} == {"2001:db8::1", "93.184.216.34"}
    assert answers.calls == ["dual.example", "dual.example"]
