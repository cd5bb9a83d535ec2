"""Operator routes, included at the site root: /metrics, /healthz, /readyz."""

from django.urls import path

from conversations.ops import views

urlpatterns = [
    path("metrics", views.metrics_view, name="ops-metrics"),
    path("healthz", views.healthz, name="ops-healthz"),
    path("readyz", views.readyz, name="ops-readyz"),
]
