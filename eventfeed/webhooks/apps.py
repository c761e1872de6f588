from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "eventfeed.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from eventfeed import sandbox

        from .templates import from_cloud_event

        # Prefect Cloud's webhook templates use it: {{ body|from_cloud_event(headers) }}.
        sandbox.add_filter("from_cloud_event", from_cloud_event)
