from django.apps import AppConfig


class BlocksConfig(AppConfig):
    name = "eventfeed.blocks"
    label = "blocks"
    verbose_name = "Notification channels (Prefect blocks)"
