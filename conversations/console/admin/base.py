"""Shared admin behaviour for the console's registrations.

- `ConsoleModelAdmin`: domain rows (conversations, turns, staff actions) are read and
  acted on through the console's actions, which call the services; the admin's own
  add/change forms are off and only superusers delete.
- `SuperuserManagedAdmin`: configuration that only superusers edit (agents; API keys
  should use it too); others with the view permission may look.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from conversations.authorization import Action, allowed, principal_of


class ConsoleModelAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["console/console.css"]}

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return request.user.is_superuser

    # Bulk actions declare these as their `permissions` (the admin offers and runs an
    # action only for those who hold them; the services decide again per conversation).
    def has_retry_turn_permission(self, request: Any) -> bool:
        return allowed(principal_of(request.user), Action.RETRY)

    def has_set_status_permission(self, request: Any) -> bool:
        return allowed(principal_of(request.user), Action.SET_STATUS)


class SuperuserManagedAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return request.user.is_superuser
