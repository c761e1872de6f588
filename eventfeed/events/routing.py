from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("api/events/in", consumers.EventsInConsumer.as_asgi()),
    path("api/events/out", consumers.EventsOutConsumer.as_asgi()),
    path("ws/feed", consumers.FeedConsumer.as_asgi()),
]
