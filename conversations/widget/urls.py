"""HTTP routes of the widget door (included at the site root by `support.urls`)."""

from __future__ import annotations

from django.urls import path

from conversations.widget import help, views

urlpatterns = [
    path("", views.demo_page, name="widget-demo"),
    path("widget/session", views.widget_session, name="widget-session"),
    path("widget/docs/", views.docs_page, name="widget-docs"),
    path("help/", help.help_index, name="help-index"),
    path("help/<int:document_id>/", help.help_article, name="help-article-bare"),
    path("help/<int:document_id>-<slug:slug>/", help.help_article, name="help-article"),
]
