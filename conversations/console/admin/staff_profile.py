"""Staff profiles: the name and avatar customers see beside a staff member's replies
(`conversations.models.staff_profile`). Superusers set them; replies sent afterwards
carry the new name (earlier ones keep the name they were sent with)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from conversations.console.admin.base import SuperuserManagedAdmin
from conversations.models import StaffProfile


class StaffProfileForm(forms.ModelForm):
    avatar_url = forms.URLField(
        required=False, assume_scheme="https", label="Avatar URL", max_length=500,
        help_text=StaffProfile._meta.get_field("avatar_url").help_text,
    )

    class Meta:
        model = StaffProfile
        fields = ("user", "display_name", "avatar_url")


@admin.register(StaffProfile)
class StaffProfileAdmin(SuperuserManagedAdmin):
    form = StaffProfileForm
    list_display = ("user", "display_name", "avatar_url")
    search_fields = ("user__username", "display_name")
    autocomplete_fields = ("user",)
    fields = ("user", "display_name", "avatar_url")
