"""Counts by status are kept by the database: exact after any write, read without touching the rows."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.db import counters
from core.db.bulk import insert_rows
from core.db.upkeep import upkeep_ensure
from images import selectors
from images.models import Generation, Image, ImageStatus
from publishing.models import Product

pytestmark = pytest.mark.django_db


def truth(model) -> dict[str, int]:
    return dict(model.objects.order_by().values_list("status").annotate(n=Count("pk")))


def counted(model) -> dict[str, int]:
    table = model._meta.db_table
    return counters.status_counts(connection, [table])[table]


def bulk_images(n: int, status: str = ImageStatus.PENDING, prompt: str = "bulk") -> list[str]:
    ids = [f"img_{uuid.uuid4().hex}" for _ in range(n)]
    insert_rows(
        Image,
        fields=["id", "status", "prompt", "file", "sha256", "created_at"],
        rows=[(i, status, f"{prompt} {k}", f"images/x/{i}.png", uuid.uuid4().hex * 2, timezone.now())
              for k, i in enumerate(ids)],
    )
    return ids


def test_stats_and_the_pending_count_read_no_table_they_count(make_image):
    make_image()
    with CaptureQueriesContext(connection) as captured:
        selectors.stats()
        selectors.image_pending_count()
    read = " ".join(q["sql"] for q in captured.captured_queries)
    for table in ("images_image", "images_generation", "publishing_product"):
        assert f'"{table}"' not in read and f" {table} " not in read, read


def test_counts_stay_exact_after_bulk_inserts_raw_sql_and_queryset_writes(make_image):
    make_image()
    bulk_images(250)
    bulk_images(40, ImageStatus.APPROVED)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO images_image (id, status, source, prompt, file, thumbnail, width, height, format, "
            "color_mode, file_size, sha256, quality, quality_valid, quality_warnings, created_at, updated_at) "
            "VALUES (%s, 'rejected', 'imported', 'raw', 'f.png', '', 1, 1, 'PNG', '', 0, %s, '{}', true, 0, %s, %s)",
            ["img_raw", "0" * 64, timezone.now(), timezone.now()],
        )
    assert counted(Image) == truth(Image) == {"pending": 251, "approved": 40, "rejected": 1}

    Image.objects.filter(status=ImageStatus.PENDING, prompt__startswith="bulk 1").update(status=ImageStatus.REJECTED)
    Image.objects.filter(status=ImageStatus.APPROVED).update(prompt="renamed")  # no status change
    Image.objects.filter(status=ImageStatus.REJECTED, prompt__startswith="bulk 10").delete()
    assert counted(Image) == truth(Image)
    assert selectors.image_pending_count() == truth(Image)["pending"]
    assert selectors.stats()["images"] == {"total": Image.objects.count(), "by_status": truth(Image)}

    Image.objects.all().delete()
    assert counted(Image) == {} and selectors.stats()["images"] == {"total": 0, "by_status": {}}


def test_generation_and_product_counts_follow_their_rows(make_image):
    generations = [Generation.objects.create(prompt=f"g{n}", backend="procedural", prompt_hash=f"{n:064x}")
                   for n in range(3)]
    Generation.objects.filter(pk=generations[0].pk).update(status="failed")
    image = make_image(status=ImageStatus.APPROVED)
    product = Product.objects.create(image=image, platform="export")
    product.status = "published"
    product.save()
    assert counted(Generation) == truth(Generation) == {"queued": 2, "failed": 1}
    assert counted(Product) == truth(Product) == {"published": 1}
    image.delete()  # the product goes with it (CASCADE, done by Django row by row)
    assert counted(Product) == truth(Product) == {}


def test_loaddata_restores_rows_and_their_counts(make_image, tmp_path):
    make_image()
    make_image(status=ImageStatus.APPROVED)
    dump = tmp_path / "images.json"
    call_command("dumpdata", "images.image", output=str(dump), verbosity=0)
    Image.objects.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    assert counted(Image) == truth(Image) == {"pending": 1, "approved": 1}


def test_a_table_rebuilt_without_its_triggers_is_counted_afresh_after_migrating(make_image):
    """What Django's SQLite schema editor does on a field change: the rebuilt table has no triggers."""
    make_image()
    names = [name for name in counters._trigger_names("images_image")
             if connection.vendor == "postgresql" or not name.endswith("_trunc")]
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP TRIGGER {name}" + (" ON images_image" if connection.vendor == "postgresql" else ""))
    bulk_images(30)  # uncounted: no trigger
    assert counted(Image) != truth(Image)
    upkeep_ensure()  # what post_migrate runs
    assert counted(Image) == truth(Image) == {"pending": 31}
    bulk_images(5)
    assert counted(Image) == {"pending": 36}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="delta rows and TRUNCATE triggers are PostgreSQL's")
def test_postgresql_folds_delta_rows_without_changing_the_counts(make_image):
    image = make_image()
    for _ in range(counters.FOLD_AFTER_ROWS // 2 + 5):
        Image.objects.filter(pk=image.pk).update(status=ImageStatus.APPROVED)
        Image.objects.filter(pk=image.pk).update(status=ImageStatus.PENDING)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {counters.TABLE} WHERE tbl = 'images_image'")
        before = cursor.fetchone()[0]
        assert counted(Image) == {"pending": 1}  # this read folds
        cursor.execute(f"SELECT COUNT(*) FROM {counters.TABLE} WHERE tbl = 'images_image'")
        after = cursor.fetchone()[0]
    assert before > counters.FOLD_AFTER_ROWS and after == 1
    assert counted(Image) == {"pending": 1}
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # Django's foreign keys are deferred
        cursor.execute("TRUNCATE images_image CASCADE")
    assert counted(Image) == {}


def test_the_image_list_page_count_comes_from_the_counters_unless_narrowed(client_user, make_image):
    bulk_images(7)
    bulk_images(3, ImageStatus.APPROVED, prompt="lighthouse")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=client_user).key}")
    for query, expected in [("", 10), ("?status=approved", 3), ("?status=pending&page_size=2", 7),
                            ("?search=lighthouse", 3), ("?status=pending&search=lighthouse", 0)]:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(f"/api/v1/images{query}")
        assert response.status_code == 200 and response.json()["count"] == expected, query
        full_counts = [q["sql"] for q in captured.captured_queries
                       if "COUNT(" in q["sql"].upper() and '"images_image"' in q["sql"]]
        assert bool(full_counts) == ("search" in query), (query, full_counts)
    narrowed = selectors.images_filter(status=ImageStatus.PENDING).filter(prompt__startswith="bulk 1")
    assert narrowed.count() == 1  # a condition added later is counted by the rows


def test_a_table_counted_by_another_column_is_counted_as_exactly():
    # The counted tables all use `status`; a column of another name takes the trigger's other statements.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE counted_by_state (id INTEGER PRIMARY KEY, state VARCHAR(16) NOT NULL)")
    try:
        counters.counters_ensure(connection, [("counted_by_state", "state")])
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO counted_by_state (id, state) VALUES (1, 'a'), (2, 'a'), (3, 'b'), (4, 'c')")
            cursor.execute("UPDATE counted_by_state SET state = 'b' WHERE id IN (1, 4)")
            cursor.execute("DELETE FROM counted_by_state WHERE id = 2")
        assert counters.status_counts(connection, ["counted_by_state"])["counted_by_state"] == {"b": 3}
    finally:
        counters.counters_drop(connection, [("counted_by_state", "state")])
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE counted_by_state")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans kept by prepared statements are PostgreSQL's")
def test_the_counts_read_keeps_its_plan_under_force_custom_plan(make_image):
    make_image()
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_custom_plan",)  # the sessions' setting (pod_gateway.settings)
        for _ in range(8):  # psycopg prepares a statement from its fifth run on
            assert counters.status_counts(connection, ["images_image"])["images_image"] == {"pending": 1}
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                       [f"%FROM {counters.TABLE} WHERE tbl IN%"])
        (generic, custom), = cursor.fetchall()
    assert generic >= 1 and custom == 0  # planned once, not at each read
