"""ASGI entry point: HTTP goes to Django, websockets to the Channels routes."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventfeed.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from eventfeed import serving  # noqa: E402
from eventfeed.events.routing import websocket_urlpatterns  # noqa: E402
from eventfeed.automations.routing import websocket_urlpatterns as automation_websockets  # noqa: E402
from eventfeed.automations.service import StartEvaluator  # noqa: E402

serving.install()

# StartEvaluator runs the automation evaluator inside each Daphne process (README, Automations).
application = StartEvaluator(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Session auth for the browser's feed socket; the API doors check their own keys.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns + automation_websockets)),
    }
))
