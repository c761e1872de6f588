from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from eventfeed.events import api, views
from eventfeed.savedviews import views as savedviews

urlpatterns = [
    path("", savedviews.home, name="index"),
    path("events/", views.feed, name="feed"),
    path("events/names", views.feed_names, name="feed-names"),
    path("events/histogram", views.feed_histogram, name="feed-histogram"),
    path("events/facets", views.feed_facets, name="feed-facets"),
    path("events/export", views.feed_export, name="feed-export"),
    path("events/<str:event_id>/", views.event_detail, name="event-detail"),
    path("settings/api-keys/", views.api_keys, name="api-keys"),
    path("settings/api-keys/<int:key_id>/revoke", views.revoke_api_key, name="api-key-revoke"),
    path("settings/storage/", views.storage_page, name="storage"),
    path("settings/storage/overrides/<int:override_id>/delete", views.delete_retention_override, name="retention-override-delete"),
    path("settings/ingest-problems/", views.ingest_problems, name="ingest-problems"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/events", api.events_ingest, name="api-events"),
    path("api/events/filter", api.events_filter, name="api-events-filter"),
    path("api/events/filter/next", api.events_filter_next, name="api-events-filter-next"),
    path("api/events/export", api.events_export, name="api-events-export"),
    path("api/events/count-by/<str:countable>", api.events_count_by, name="api-events-count-by"),
    path("api/admin/version", api.admin_version, name="api-admin-version"),
    path("api/health", api.health, name="api-health"),
    path("api/csrf-token", api.csrf_token, name="api-csrf-token"),
    path("", include("eventfeed.automations.urls")),
    path("", include("eventfeed.blocks.urls")),
    path("", include("eventfeed.webhooks.urls")),
    path("", include("eventfeed.savedviews.urls")),
    path("admin/", admin.site.urls),
]
