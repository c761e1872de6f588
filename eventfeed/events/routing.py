from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("api/events/in", consumers.EventsInConsumer.as_asgi()),
]
