"""Product titles and marketplace ids searched through indexes the database keeps (core.db.textsearch)."""

from django.db import migrations

from core.db.textsearch import text_index_drop, text_index_ensure

SEARCHED = ["title", "external_id"]


def product_search_indexes(apps, schema_editor):
    for column in SEARCHED:
        text_index_ensure(schema_editor.connection, "publishing_product", column)


def product_search_indexes_undo(apps, schema_editor):
    for column in SEARCHED:
        text_index_drop(schema_editor.connection, "publishing_product", column)


class Migration(migrations.Migration):

    dependencies = [
        ("publishing", "0007_products_per_design"),
    ]

    operations = [
        migrations.RunPython(product_search_indexes, product_search_indexes_undo, elidable=False),
    ]
