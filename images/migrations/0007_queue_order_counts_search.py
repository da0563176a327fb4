"""The review queue's orders served by indexes; counts by status and the prompt index kept by the database."""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from core.db.counters import counters_drop, counters_ensure
from core.db.textsearch import text_index_drop, text_index_ensure

COUNTED = [("images_image", "status"), ("images_generation", "status")]


def database_upkeep(apps, schema_editor):
    # After the field and index changes above: on SQLite they rebuild the table, which drops triggers.
    counters_ensure(schema_editor.connection, COUNTED)
    text_index_ensure(schema_editor.connection, "images_image", "prompt")


def database_upkeep_undo(apps, schema_editor):
    counters_drop(schema_editor.connection, COUNTED)
    text_index_drop(schema_editor.connection, "images_image", "prompt")


class Migration(migrations.Migration):

    dependencies = [
        ("images", "0006_lifecycle_history"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="image",
            name="images_imag_status_ef8130_idx",
        ),
        migrations.AlterField(
            model_name="image",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="image",
            name="review_rank",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Case(models.When(status="pending", then=models.Value(0)), default=models.Value(1)),
                output_field=models.PositiveSmallIntegerField(),
            ),
        ),
        migrations.AddIndex(
            model_name="image",
            index=models.Index(fields=["review_rank", "-created_at", "-id"], name="image_queue_order"),
        ),
        migrations.AddIndex(
            model_name="image",
            index=models.Index(fields=["status", "-created_at", "-id"], name="image_status_order"),
        ),
        migrations.AddIndex(
            model_name="image",
            index=models.Index(fields=["created_at", "id"], name="image_created_order"),
        ),
        migrations.AddIndex(
            model_name="image",
            index=models.Index(fields=["quality_valid", "-created_at", "-id"], name="image_quality_order"),
        ),
        migrations.RunPython(database_upkeep, database_upkeep_undo, elidable=False),
    ]
