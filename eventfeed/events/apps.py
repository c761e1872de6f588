from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "eventfeed.events"
    label = "events"
    verbose_name = "Events"
