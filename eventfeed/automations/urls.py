from django.urls import path

from . import api, api_debug, debug_views, views

urlpatterns = [
    path("automations/", views.automation_list, name="automation-list"),
    path("automations/new", views.automation_new, name="automation-new"),
    path("automations/preview", views.automation_preview, name="automation-preview"),
    path("automations/<str:automation_id>/", views.automation_detail, name="automation-detail"),
    path("automations/<str:automation_id>/edit", views.automation_edit, name="automation-edit"),
    path("automations/<str:automation_id>/delete", views.automation_delete, name="automation-delete"),
    path("automations/<str:automation_id>/enabled", views.automation_enabled, name="automation-enabled"),
    path("automations/<str:automation_id>/test", debug_views.automation_test, name="automation-test"),
    path("automations/<str:automation_id>/replay", debug_views.automation_replay, name="automation-replay"),
    path("automations/<str:automation_id>/runs/<str:run_id>/rerun", debug_views.automation_rerun, name="automation-rerun"),
    path("notifications/", views.notifications, name="notifications"),
    path("api/automations/", api.create, name="api-automations"),
    path("api/automations", api.create),
    path("api/automations/replay", api_debug.replay_draft, name="api-automations-replay"),
    path("api/automations/filter", api.filter_automations, name="api-automations-filter"),
    path("api/automations/count", api.count, name="api-automations-count"),
    path("api/automations/related-to/<path:resource_id>", api.related_to, name="api-automations-related-to"),
    path("api/automations/owned-by/<path:resource_id>", api.owned_by, name="api-automations-owned-by"),
    path("api/automations/<str:automation_id>", api.item, name="api-automation"),
    path("api/automations/<str:automation_id>/test", api_debug.test, name="api-automation-test"),
    path("api/automations/<str:automation_id>/replay", api_debug.replay_automation, name="api-automation-replay"),
    path("api/automations/<str:automation_id>/runs/<str:run_id>/rerun", api_debug.rerun, name="api-automation-rerun"),
]
