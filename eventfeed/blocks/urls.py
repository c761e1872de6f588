from django.urls import path

from . import api, views

urlpatterns = [
    path("settings/channels/", views.channels, name="channels"),
    path("settings/channels/<str:document_id>/test", views.channel_test, name="channel-test"),
    path("settings/channels/<str:document_id>/delete", views.channel_delete, name="channel-delete"),
    path("api/block_types/", api.types_create),
    path("api/block_types/filter", api.types_filter),
    path("api/block_types/slug/<str:slug>", api.type_by_slug),
    path("api/block_types/slug/<str:slug>/block_documents", api.documents_of_type),
    path("api/block_types/slug/<str:slug>/block_documents/name/<str:name>", api.document_by_name),
    path("api/block_types/<str:type_id>", api.type_update),
    path("api/block_schemas/", api.schemas_create),
    path("api/block_schemas/filter", api.schemas_filter),
    path("api/block_schemas/checksum/<str:checksum>", api.schema_by_checksum),
    path("api/block_schemas/<str:schema_id>", api.schema_item),
    path("api/block_documents/", api.documents_create),
    path("api/block_documents/filter", api.documents_filter),
    path("api/block_documents/<str:document_id>", api.document_item),
]
