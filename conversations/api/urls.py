"""URL routes of the REST API (`/api/v1/`), its OpenAPI schema and its offline docs."""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from conversations.api.views.answers import answering_view
from conversations.api.views.conversations import (
    ConversationCollectionView,
    ConversationDetailView,
    ConversationHandbackView,
    ConversationHandoffView,
    ConversationRatingView,
)
from conversations.api.views.docs import docs_asset
from conversations.api.views.messages import MessageCollectionView
from conversations.api.views.turns import TurnCancelView, TurnCollectionView, TurnDetailView, TurnRetryView

CONVERSATION = "v1/conversations/<str:conversation_id>"
TURN = f"{CONVERSATION}/turns/<str:turn_id>"

urlpatterns = [
    path("v1/conversations", ConversationCollectionView.as_view(), name="api-conversations"),
    path(CONVERSATION, ConversationDetailView.as_view(), name="api-conversation"),
    path(f"{CONVERSATION}/handoff", ConversationHandoffView.as_view(), name="api-conversation-handoff"),
    path(f"{CONVERSATION}/handback", ConversationHandbackView.as_view(), name="api-conversation-handback"),
    path(f"{CONVERSATION}/rating", ConversationRatingView.as_view(), name="api-conversation-rating"),
    # Posts that wait for their turn's answer are served without holding a thread.
    path(f"{CONVERSATION}/messages", answering_view(MessageCollectionView), name="api-messages"),
    path(f"{CONVERSATION}/turns", TurnCollectionView.as_view(), name="api-turns"),
    path(TURN, TurnDetailView.as_view(), name="api-turn"),
    path(f"{TURN}/retry", answering_view(TurnRetryView), name="api-turn-retry"),
    path(f"{TURN}/cancel", TurnCancelView.as_view(), name="api-turn-cancel"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves the page's script at ?script, so the page has no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Swagger UI's assets, served by the project itself so the docs work offline.
    re_path(r"^docs/assets/(?P<path>.+)$", docs_asset, name="api-docs-assets"),
]
