"""Products by status counted by the database (core.db.counters)."""

from django.db import migrations

from core.db.counters import counters_drop, counters_ensure

COUNTED = [("publishing_product", "status")]


def counters_add(apps, schema_editor):
    counters_ensure(schema_editor.connection, COUNTED)


def counters_remove(apps, schema_editor):
    counters_drop(schema_editor.connection, COUNTED)


class Migration(migrations.Migration):

    dependencies = [
        ("publishing", "0005_lifecycle_history"),
        ("images", "0007_queue_order_counts_search"),
    ]

    operations = [migrations.RunPython(counters_add, counters_remove)]
