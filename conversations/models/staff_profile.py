"""`StaffProfile`: how a staff member appears to customers (a display name and an avatar),
set in the admin. Staff replies store the name and avatar as they were when sent
(`services.messages`), so a later rename does not rewrite the transcript."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class StaffProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    display_name = models.CharField(
        max_length=80, blank=True,
        help_text="The name customers see beside this person's replies. Blank shows the "
        "full name, then the username.",
    )
    avatar_url = models.URLField(
        blank=True, max_length=500,
        help_text="An http(s) image shown beside this person's replies. Blank shows the "
        "name's first letter.",
    )

    class Meta:
        verbose_name = "staff profile"

    def __str__(self) -> str:
        return self.display_name or str(self.user)


def staff_identity(user: Any) -> dict[str, str]:
    """What customers see of a staff member: `{"name", "avatar_url"}` (the profile's
    display name, else the full name, else the username; "Support" without a user)."""
    if user is None:
        return {"name": "Support", "avatar_url": ""}
    profile = StaffProfile.objects.filter(user_id=user.pk).first() if user.pk else None
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    name = (profile.display_name if profile else "") or full or getattr(user, "username", "") or "Support"
    return {"name": name, "avatar_url": profile.avatar_url if profile else ""}
