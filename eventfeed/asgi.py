"""ASGI entry point: HTTP goes to Django, websockets to the Channels routes."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventfeed.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from eventfeed import serving  # noqa: E402
from eventfeed.events import live  # noqa: E402
from eventfeed.origin import OriginCheck  # noqa: E402
from eventfeed.events.routing import websocket_urlpatterns  # noqa: E402
from eventfeed.automations.routing import websocket_urlpatterns as automation_websockets  # noqa: E402
from eventfeed.automations.service import StartEvaluator  # noqa: E402

serving.install()
serving.when_serving(live.announce_start)

# Every websocket route, in one list: OriginCheck guards them all (tests/test_origin.py tries each).
websocket_routes = websocket_urlpatterns + automation_websockets

# StartEvaluator runs the automation evaluator inside each Daphne process (README, Automations).
application = StartEvaluator(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A browser page from another site is refused on every route; session auth for the
        # browser's sockets; the API doors check their own keys.
        "websocket": OriginCheck(AuthMiddlewareStack(URLRouter(websocket_routes))),
    }
))
