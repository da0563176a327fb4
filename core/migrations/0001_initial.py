from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("worker_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("hostname", models.CharField(blank=True, default="", max_length=255)),
                ("pid", models.PositiveIntegerField(default=0)),
                ("started_at", models.DateTimeField(auto_now_add=True)),
                ("last_seen", models.DateTimeField(db_index=True)),
            ],
        ),
    ]
