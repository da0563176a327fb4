"""Generation prompts searched through an index the database keeps, as image prompts are (core.db.textsearch)."""

from django.db import migrations

from core.db.textsearch import text_index_drop, text_index_ensure


def generation_prompt_index(apps, schema_editor):
    text_index_ensure(schema_editor.connection, "images_generation", "prompt")


def generation_prompt_index_undo(apps, schema_editor):
    text_index_drop(schema_editor.connection, "images_generation", "prompt")


class Migration(migrations.Migration):

    dependencies = [
        ("images", "0007_queue_order_counts_search"),
    ]

    operations = [
        migrations.RunPython(generation_prompt_index, generation_prompt_index_undo, elidable=False),
    ]
