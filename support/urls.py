"""URL routes: the admin (staff console), the REST API, the widget and its demo page."""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
# With DEBUG on, daphne serves the admin's and the console's static files itself (empty
# when DEBUG is off: production serves collected static files in front of daphne).
urlpatterns += staticfiles_urlpatterns()
