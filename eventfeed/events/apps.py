from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "eventfeed.events"
    label = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        from eventfeed import audit  # noqa: F401  (connects the sign-in receivers)
