"""Quick reject reasons for the review workspace, a short default list, and the reviewers' right to edit them."""

from django.db import migrations, models

from core.roles import roles_operation

DEFAULT_REASONS = [
    "Blurry or soft focus",
    "Resolution or DPI too low for print",
    "Garbled text or lettering",
    "Off-prompt or off-brief",
    "Artifacts or distorted anatomy",
    "Too close to an existing design",
]
GRANTS = {
    "reviewers": [
        "images.view_quickrejectreason", "images.add_quickrejectreason",
        "images.change_quickrejectreason", "images.delete_quickrejectreason",
    ],
}


def add_defaults(apps, schema_editor):
    QuickRejectReason = apps.get_model("images", "QuickRejectReason")
    for position, text in enumerate(DEFAULT_REASONS, start=1):
        QuickRejectReason.objects.get_or_create(text=text, defaults={"position": position})


def remove_defaults(apps, schema_editor):
    apps.get_model("images", "QuickRejectReason").objects.filter(text__in=DEFAULT_REASONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("images", "0004_move_workerheartbeat_to_core"),
        ("images", "0002_roles"),
    ]

    operations = [
        migrations.CreateModel(
            name="QuickRejectReason",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.CharField(max_length=200, unique=True)),
                ("position", models.PositiveSmallIntegerField(default=0)),
            ],
            options={"verbose_name": "quick reject reason", "ordering": ["position", "id"]},
        ),
        migrations.RunPython(add_defaults, remove_defaults),
        roles_operation(GRANTS),
    ]
