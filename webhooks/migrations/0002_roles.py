"""Webhooks' part of the roles (core.roles): every client manages its own subscriptions."""

from django.db import migrations

from core.roles import roles_operation

GRANTS = {
    "clients": [
        "webhooks.add_webhooksubscription", "webhooks.view_webhooksubscription",
        "webhooks.change_webhooksubscription", "webhooks.delete_webhooksubscription",
    ],
}


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [roles_operation(GRANTS)]
