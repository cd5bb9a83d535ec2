"""WSGI entry point (management tooling only; the platform is served over ASGI by daphne)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "support.settings")
application = get_wsgi_application()
