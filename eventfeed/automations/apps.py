from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "eventfeed.automations"
    label = "automations"
    verbose_name = "Automations"
