"""URL routes: the admin (staff console), the REST API, the widget and its demo page."""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("conversations.api.urls")),
    path("", include("conversations.ops.urls")),
]
# With DEBUG on, daphne serves the admin's and the console's static files itself (empty
# when DEBUG is off: production serves collected static files in front of daphne).
urlpatterns += staticfiles_urlpatterns()

# JSON errors for /api/ paths that match no view; the usual pages elsewhere.
handler404 = "conversations.api.errors.not_found"
handler500 = "conversations.api.errors.server_error"
