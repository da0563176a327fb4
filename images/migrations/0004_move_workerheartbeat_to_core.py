from django.db import migrations


class Migration(migrations.Migration):
    """Heartbeats now live in core (core.WorkerHeartbeat); they are transient, so the old rows just go."""

    dependencies = [
        ("images", "0003_generation_request_id"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.DeleteModel(name="WorkerHeartbeat")]
