"""The review queue's part of the roles (core.roles): clients generate and look, reviewers decide."""

from django.db import migrations

from core.roles import roles_operation

GRANTS = {
    "clients": ["images.add_generation", "images.view_generation", "images.add_image", "images.view_image"],
    "reviewers": ["images.review_image", "images.change_image", "images.delete_image"],
}


class Migration(migrations.Migration):
    dependencies = [
        ("images", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [roles_operation(GRANTS)]
