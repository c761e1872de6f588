from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("api/events/in", consumers.EventsInConsumer.as_asgi()),
    path("api/events/out", consumers.EventsOutConsumer.as_asgi()),
    # Browsers send an Origin; only pages served from an allowed host may open the feed socket.
    path("ws/feed", AllowedHostsOriginValidator(consumers.FeedConsumer.as_asgi())),
]
