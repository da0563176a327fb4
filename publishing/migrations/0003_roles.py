"""Publishing's part of the roles (core.roles): clients see products and templates, publishers make them."""

from django.db import migrations

from core.roles import roles_operation

GRANTS = {
    "clients": ["publishing.view_product", "publishing.view_producttemplate"],
    "publishers": [
        "publishing.publish_image", "publishing.add_producttemplate", "publishing.change_producttemplate",
        "publishing.delete_producttemplate", "publishing.change_product",
    ],
}


class Migration(migrations.Migration):
    dependencies = [
        ("publishing", "0002_product_progress_fields"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [roles_operation(GRANTS)]
