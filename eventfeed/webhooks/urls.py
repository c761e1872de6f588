from django.urls import path

from . import api, views

urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhook-list"),
    path("webhooks/new", views.webhook_new, name="webhook-new"),
    path("webhooks/preview", views.webhook_preview, name="webhook-preview"),
    path("webhooks/<str:webhook_id>/", views.webhook_detail, name="webhook-detail"),
    path("webhooks/<str:webhook_id>/edit", views.webhook_edit, name="webhook-edit"),
    path("webhooks/<str:webhook_id>/rotate", views.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<str:webhook_id>/enabled", views.webhook_enabled, name="webhook-enabled"),
    path("webhooks/<str:webhook_id>/delete", views.webhook_delete, name="webhook-delete"),
    path("api/webhooks/", api.collection, name="api-webhooks"),
    path("api/webhooks", api.collection),
    path("api/webhooks/filter", api.filter_webhooks, name="api-webhooks-filter"),
    path("api/webhooks/<str:webhook_id>", api.item, name="api-webhook"),
    path("api/webhooks/<str:webhook_id>/rotate", api.rotate, name="api-webhook-rotate"),
    path("hooks/<str:slug>", api.receive, name="hook"),
]
