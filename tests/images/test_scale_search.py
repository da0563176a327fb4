"""Prompt search through each database's own index, with the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from core.db.bulk import insert_rows
from images import selectors
from images.models import Generation, Image
from tests.plans import plan

pytestmark = pytest.mark.django_db

PROMPTS = [
    "Retro sunset CAT on a surfboard",
    "neon city at night, cyberpunk",
    "watercolour cat portrait",
    'a "quoted" sign saying 100% off_sale',
    "Café au lait in Montmartre",
    "pixel-art dragon (8-bit)",
    "cat",
    "",
]
TERMS = ["cat", "CAT", "sunset cat", "t on a", "neon", "night, cy", '"quoted"', "100%", "off_sale", "_s", "%",
         "café", "CAFÉ", "(8-bit)", "dragon (", "at", "c", "zzz", "a surf", "Montmartre"]


def reference(term: str) -> set[str]:
    """What "contains, ignoring case" means, computed outside the database."""
    return {prompt for prompt in PROMPTS if term.lower() in prompt.lower()}


def bulk(prompts: list[str]) -> dict[str, str]:
    """Insert rows in bulk, bypassing the ORM's save(): the database's triggers must index them."""
    ids = {f"img_{uuid.uuid4().hex}": prompt for prompt in prompts}
    insert_rows(
        Image,
        fields=["id", "prompt", "file", "sha256", "created_at"],
        rows=[(i, prompt, f"images/s/{i}.png", uuid.uuid4().hex * 2, timezone.now()) for i, prompt in ids.items()],
    )
    return ids


def found(term: str) -> set[str]:
    return set(selectors.images_filter(search=term).values_list("prompt", flat=True))


def test_search_finds_exactly_the_prompts_containing_the_term_ignoring_case():
    bulk(PROMPTS)
    for term in TERMS:
        assert found(term) == reference(term), term


def test_rows_changed_or_deleted_by_queryset_writes_are_searched_as_they_now_are():
    ids = bulk(["old lighthouse", "harbour at dawn"])
    lighthouse = next(i for i, p in ids.items() if p == "old lighthouse")
    Image.objects.filter(pk=lighthouse).update(prompt="new windmill")
    assert found("lighthouse") == set() and found("windmill") == {"new windmill"}
    Image.objects.filter(prompt__startswith="harbour").delete()
    assert found("harbour") == set()
    Image.objects.filter(pk=lighthouse).update(id="img_renamed")
    assert list(selectors.images_filter(search="windmill").values_list("id", flat=True)) == ["img_renamed"]


def test_admin_search_needs_every_word_or_matches_the_id():
    ids = bulk(["neon tiger", "neon bug", "pastel tiger"])
    tiger = next(i for i, p in ids.items() if p == "neon tiger")

    def admin(words: str) -> set[str]:
        return set(selectors.images_search(Image.objects.all(), words).values_list("prompt", flat=True))

    assert admin("neon tiger") == {"neon tiger"}
    assert admin("tiger NEON") == {"neon tiger"}
    assert admin('"neon t"') == {"neon tiger"}
    assert admin(tiger) == {"neon tiger"}
    assert admin("") == {"neon tiger", "neon bug", "pastel tiger"}


def test_search_reads_the_prompt_index_not_the_table():
    bulk(PROMPTS)
    if connection.vendor == "postgresql":
        # The index matches the expression Django's icontains compares: UPPER(prompt).
        text = plan(selectors.images_filter(search="sunset").order_by())
        assert "Bitmap Index Scan on images_image_prompt_trgm" in text, text
    else:
        text = plan(selectors.images_filter(search="sunset").order_by("-created_at", "-id")[:50])
        assert "VIRTUAL TABLE INDEX" in text and "images_image_prompt_fts" in text, text
        assert "SEARCH images_image USING INDEX" in text and not re.search(r"SCAN images_image(\s|$)", text), text


def bulk_generations(prompts: list[str]) -> dict[str, str]:
    """Generations inserted in bulk (no save()): their prompts are indexed by the database's triggers."""
    ids = {f"gen_{uuid.uuid4().hex}": prompt for prompt in prompts}
    insert_rows(
        Generation,
        fields=["id", "prompt", "backend", "prompt_hash", "params", "external_jobs", "created_at"],
        rows=[(i, prompt, "procedural", uuid.uuid4().hex * 2, {}, {}, timezone.now()) for i, prompt in ids.items()],
    )
    return ids


def generations_found(words: str) -> set[str]:
    return set(selectors.generations_search(Generation.objects.all(), words).values_list("prompt", flat=True))


def test_generation_search_finds_exactly_the_prompts_containing_every_word():
    bulk_generations(PROMPTS)
    for term in TERMS:
        if '"' not in term:  # a term with a space is searched as one "quoted phrase"
            assert generations_found(f'"{term}"' if " " in term else term) == reference(term), term
    assert generations_found("cat retro") == {"Retro sunset CAT on a surfboard"}


def test_generation_search_matches_the_id_or_the_prompt_hash_in_either_case():
    ids = bulk_generations(["neon tiger", "pastel tiger"])
    neon = next(i for i, p in ids.items() if p == "neon tiger")
    pastel_hash = Generation.objects.values_list("prompt_hash", flat=True).get(prompt="pastel tiger")
    assert generations_found(neon) == {"neon tiger"}
    assert generations_found(pastel_hash.upper()) == {"pastel tiger"}
    Generation.objects.filter(pk=neon).update(prompt="neon windmill")  # a queryset write: indexed anew
    assert generations_found("tiger") == {"pastel tiger"} and generations_found("windmill") == {"neon windmill"}


def test_generation_search_reads_the_prompt_index_not_the_table():
    bulk_generations(PROMPTS)
    searched = selectors.generations_search(Generation.objects.all(), "sunset")
    if connection.vendor == "postgresql":
        text = plan(searched.order_by())
        assert "Bitmap Index Scan on images_generation_prompt_trgm" in text, text
    else:
        text = plan(searched.order_by("-created_at", "-id")[:50])
        assert "VIRTUAL TABLE INDEX" in text and "images_generation_prompt_fts" in text, text
        assert not re.search(r"SCAN images_generation(\s|$)", text), text
