"""The staff permissions: the console's custom permissions (app label `console`) and the
two support groups. Core: `conversations.authorization` reads them, so they live
below every door.

Which permission each action needs, on every door (console, widget websocket, REST
API), is decided by `conversations.authorization`, which the services call; this
module only defines the permissions and the groups that hold them.

- "Support viewer": reads conversations, turn audits, agents and the staff action log,
  and exports transcripts.
- "Support agent": everything a viewer can, plus reply, retry, take over / hand back,
  resolve / reopen, internal notes, replay and the agents' try-it panel.
- Superusers also manage agents (and API keys): the agent admin refuses add, change and
  delete to everyone else.

The groups are created by this app's data migration and again (additively, so local
changes survive) by `manage.py setup_demo`.
"""

from __future__ import annotations

from typing import Any

CONSOLE_PERMISSIONS: dict[str, str] = {
    "reply_as_staff": "Can reply to customers as staff",
    "take_over": "Can take over conversations and hand them back to the AI",
    "retry_turn": "Can retry failed turns",
    "set_status": "Can resolve and reopen conversations",
    "add_note": "Can add internal notes",
    "replay_turn": "Can replay turns against another agent, model or instructions",
    "try_agent": "Can talk to agents in the try-it panel",
}

VIEWER = "Support viewer"
AGENT = "Support agent"

_VIEW_PERMISSIONS = [
    ("conversations", "view_conversation"),
    ("conversations", "view_message"),
    ("conversations", "view_turn"),
    ("conversations", "view_agent"),
    ("conversations", "view_staffaction"),
]
GROUP_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    VIEWER: _VIEW_PERMISSIONS,
    AGENT: _VIEW_PERMISSIONS + [("console", codename) for codename in CONSOLE_PERMISSIONS],
}


def perm(codename: str) -> str:
    """The full permission name of a console permission, for `user.has_perm`."""
    return f"console.{codename}"


def support_groups_sync(*, group_model: Any = None, permission_model: Any = None) -> None:
    """Create the support groups and add their permissions (never removes any).

    Migrations pass their historical models; everyone else uses the live ones.
    Precondition: the permissions exist (post_migrate, or `create_permissions`)."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    for name, wanted in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        found = []
        for app_label, codename in wanted:
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:
                raise RuntimeError(f"permission {app_label}.{codename} does not exist yet")
            found.append(permission)
        group.permissions.add(*found)
