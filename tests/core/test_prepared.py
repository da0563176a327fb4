"""On PostgreSQL the server binds the parameters and prepares the statements a connection runs often."""

from __future__ import annotations

import pytest
from django.db import connection

from core.db.keyed import values_in
from images.models import Image

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements"),
    pytest.mark.django_db,
]


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_a_statement_run_again_and_again_is_prepared_with_its_parameters_bound_by_the_server(make_image):
    image = make_image()
    for _ in range(6):
        assert values_in(Image, key="id", keys=[image.id], fields=("id", "status")) == [
            {"id": image.id, "status": image.status}
        ]
    reads = [statement for statement in _prepared() if 'FROM "images_image"' in statement and '"status"' in statement]
    # `$1`: the id went to the server as a parameter, not quoted into the SQL text by the client.
    assert reads and all("$1" in statement and image.id not in statement for statement in reads)


def test_each_run_of_a_prepared_statement_is_planned_for_its_own_values(make_image):
    # A plan made once for any value (PostgreSQL's own choice after five runs when it looks as cheap)
    # cannot use what only the value tells: a partial index, the selectivity of the words searched.
    image = make_image(prompt="a retro axolotl")
    for _ in range(14):  # five runs before psycopg prepares it, five planned each time before that choice
        assert Image.objects.filter(prompt__icontains="axolotl").count() == 1
        assert values_in(Image, key="id", keys=[image.id], fields=("id",)) == [{"id": image.id}]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                       " WHERE statement LIKE '%%images_image%%'")
        plans = cursor.fetchall()
    assert len(plans) >= 2, plans
    assert all(generic == 0 and custom > 0 for _, generic, custom in plans), plans
