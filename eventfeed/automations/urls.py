from django.urls import path

from . import api

urlpatterns = [
    path("api/automations/", api.create, name="api-automations"),
    path("api/automations", api.create),
    path("api/automations/filter", api.filter_automations, name="api-automations-filter"),
    path("api/automations/count", api.count, name="api-automations-count"),
    path("api/automations/related-to/<path:resource_id>", api.related_to, name="api-automations-related-to"),
    path("api/automations/owned-by/<path:resource_id>", api.owned_by, name="api-automations-owned-by"),
    path("api/automations/<str:automation_id>", api.item, name="api-automation"),
]
