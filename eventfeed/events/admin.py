from django.contrib import admin

from .models import ApiKey, IngestProblem


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "hint", "created", "last_used", "revoked"]
    readonly_fields = ["key_hash", "hint", "created", "last_used"]


@admin.register(IngestProblem)
class IngestProblemAdmin(admin.ModelAdmin):
    list_display = ["created", "door", "api_key"]
