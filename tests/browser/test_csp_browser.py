"""The CSP in chromium: the site's own pages run, an inline script is refused and reported (which
is what tests/browser/conftest.py's check catches on every other browser test)."""

from tests.browser.conftest import CSP_VIOLATIONS


def test_it_refuses_an_inline_script_and_reports_it(signed_in_page):
    page = signed_in_page
    response = page.goto(page.server + "/events/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.injected = 1";
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.injected") is None
    assert any("inline script violates the following Content Security Policy directive" in v for v in CSP_VIOLATIONS), CSP_VIOLATIONS
    CSP_VIOLATIONS.clear()  # seen and expected: not this test's failure
