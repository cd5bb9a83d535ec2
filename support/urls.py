"""URL routes: the admin (staff console), the REST API, the widget and its demo page."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("conversations.widget.urls")),
]
