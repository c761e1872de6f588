from django.urls import path

from . import views

urlpatterns = [
    path("views/", views.view_save, name="savedview-save"),
    path("views/home/clear", views.home_clear, name="savedview-home-clear"),
    path("views/<int:view_id>/", views.view_open, name="savedview"),
    path("views/<int:view_id>/share", views.view_share, name="savedview-share"),
    path("views/<int:view_id>/pin", views.view_pin, name="savedview-pin"),
    path("views/<int:view_id>/delete", views.view_delete, name="savedview-delete"),
]
