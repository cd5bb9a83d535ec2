"""Create the "Support viewer" and "Support agent" groups with their permissions."""

from django.db import migrations


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); create the
    # ones these groups need now so the groups can hold them.
    from django.contrib.auth.management import create_permissions

    from conversations.permissions import support_groups_sync

    for label in ("conversations", "console"):
        config = apps.get_app_config(label)
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    support_groups_sync(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_initial"),
        ("conversations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
