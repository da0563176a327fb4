"""The three roles of the API and the admin, as Django groups with their permissions."""

from django.db import migrations

CLIENT = [
    "images.add_generation", "images.view_generation", "images.add_image", "images.view_image",
    "publishing.view_product", "publishing.view_producttemplate",
    "webhooks.add_webhooksubscription", "webhooks.view_webhooksubscription",
    "webhooks.change_webhooksubscription", "webhooks.delete_webhooksubscription",
]
REVIEWER = CLIENT + ["images.review_image", "images.change_image", "images.delete_image"]
PUBLISHER = REVIEWER + [
    "publishing.publish_image", "publishing.add_producttemplate", "publishing.change_producttemplate",
    "publishing.delete_producttemplate", "publishing.change_product",
]
ROLES = {"clients": CLIENT, "reviewers": REVIEWER, "publishers": PUBLISHER}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = {tuple(c.split(".")) for c in codenames}
        perms = [
            p for p in Permission.objects.select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        missing = wanted - {(p.content_type.app_label, p.codename) for p in perms}
        if missing:
            raise RuntimeError(f"Permissions missing for role {name}: {sorted(missing)}")
        group.permissions.set(perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("images", "0001_initial"),
        ("publishing", "0001_initial"),
        ("webhooks", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
