"""Views behind the console's custom admin pages (wired in by the admin classes' get_urls,
so the admin's login, CSRF and never-cache wrapping apply).

What a staff member may do is decided by `conversations.authorization` (in the services
the views call); the views map its refusals to the admin's answers: 404 for a
conversation they may not see, 403 for an action they may not take."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as AdminPermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from conversations.access import conversation_for_staff
from conversations.authorization import Action, authorize
from conversations.errors import NotFound, PermissionDenied
from conversations.models import Conversation


def render_page(model_admin: Any, request: Any, template: str, title: str, context: dict[str, Any]) -> HttpResponse:
    """Render a console page inside the admin's chrome (header, sidebar, breadcrumbs)."""
    opts = model_admin.model._meta
    return TemplateResponse(request, template, {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "app_label": opts.app_label,
        "media": model_admin.media,
        **context,
    })


def staff_conversation(request: Any, conversation_id: Any) -> Conversation:
    """The conversation, if this staff user may see conversations; 404 otherwise."""
    try:
        return conversation_for_staff(request.user, conversation_id)
    except NotFound:
        raise Http404("Conversation not found.") from None


def refused(exc: PermissionDenied) -> AdminPermissionDenied:
    """The admin's 403 for the access layer's refusal."""
    return AdminPermissionDenied(exc.message)


def staff_authorize(request: Any, action: Action, conversation: Any = None) -> None:
    """The access layer's decision for a console action with no service behind it
    (exports, opening the try-it panel): 404 or 403 when refused."""
    try:
        authorize(request.user, action, conversation)
    except NotFound:
        raise Http404("Conversation not found.") from None
    except PermissionDenied as exc:
        raise refused(exc) from None


def conversation_url(conversation_id: Any) -> str:
    return reverse("admin:conversations_conversation_change", args=[conversation_id])


def turn_url(turn_id: Any) -> str:
    return reverse("admin:conversations_turn_change", args=[turn_id])


def safe_next(request: Any, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default
