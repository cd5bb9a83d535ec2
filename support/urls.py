"""URL routes: the admin (staff console), the REST API, the widget and its demo page."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("conversations.api.urls")),
    path("", include("conversations.ops.urls")),
    path("", include("conversations.widget.urls")),
]

# JSON errors for /api/ paths that match no view; the usual pages elsewhere.
handler404 = "conversations.api.errors.not_found"
handler500 = "conversations.api.errors.server_error"
