from django.apps import AppConfig


class FollowConfig(AppConfig):
    name = "eventfeed.follow"
    label = "follow"
    verbose_name = "Followed Prefect servers"
