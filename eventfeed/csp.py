"""The Content-Security-Policy every response carries.

Pages load only the site's own scripts and styles, with no inline script, style or event
handler (one static JS module per page, one stylesheet), so an injected `<script>` or
`onerror=` runs nowhere even if some escaping were missed. Websockets and fetches go to the site
itself; the favicon is a data: URL.
"""

from __future__ import annotations

from django.conf import settings

POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.EVENTFEED_CSP or POLICY)
        return response
