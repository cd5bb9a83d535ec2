"""HTTP routes of the widget door (included at the site root by `support.urls`)."""

from __future__ import annotations

from django.urls import path

from conversations.widget import views

urlpatterns = [
    path("", views.demo_page, name="widget-demo"),
    path("widget/session", views.widget_session, name="widget-session"),
    path("widget/docs/", views.docs_page, name="widget-docs"),
]
