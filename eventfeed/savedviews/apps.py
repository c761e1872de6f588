from django.apps import AppConfig


class SavedViewsConfig(AppConfig):
    name = "eventfeed.savedviews"
    label = "savedviews"
    verbose_name = "Saved views"
