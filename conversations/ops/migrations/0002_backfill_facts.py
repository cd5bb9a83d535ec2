from django.db import migrations


def backfill(apps, schema_editor):
    from conversations.ops.facts import turn_facts_rebuild

    turn_facts_rebuild(apps=apps)


class Migration(migrations.Migration):
    """Facts for turns that finished before the operations app was installed."""

    dependencies = [("ops", "0001_facts")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
