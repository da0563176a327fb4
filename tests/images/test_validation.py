"""Generation input rules: cleaning, prompt checks, ranges, enums, the cfg_scale alias, the prompt hash."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from core.text import clean_text
from images.validation import GenerateInputSerializer, prompt_hash, validate_prompt


def validate(**data):
    serializer = GenerateInputSerializer(data=data)
    return serializer.is_valid(), (serializer.validated_data if serializer.is_valid() else serializer.errors)


def test_defaults_fill_every_field(settings):
    settings.GENERATION_BACKEND = "procedural"
    ok, data = validate(prompt="retro sunset cat")
    assert ok
    assert {k: data[k] for k in ("batch_size", "width", "height", "steps", "guidance", "seed", "backend")} == {
        "batch_size": 1, "width": 4500, "height": 5400, "steps": 30, "guidance": 2.0, "seed": None,
        "backend": "procedural",
    }
    assert data["allow_duplicate"] is False


def test_cfg_scale_is_read_as_guidance():
    assert validate(prompt="retro sunset cat", cfg_scale=7.5)[1]["guidance"] == 7.5
    assert validate(prompt="retro sunset cat", cfg_scale=7.5, guidance=3)[1]["guidance"] == 3.0
    ok, errors = validate(prompt="retro sunset cat", cfg_scale=25)
    assert not ok and "guidance" in errors


@pytest.mark.parametrize(
    ("field", "bad", "good"),
    [
        ("batch_size", 26, 25), ("batch_size", 0, 1), ("width", 511, 512), ("height", 8193, 8192),
        ("steps", 9, 10), ("steps", 101, 100), ("guidance", 0.05, 0.1), ("guidance", 20.5, 20),
        ("seed", -1, 0), ("seed", 4294967296, 4294967295),
    ],
)
def test_numbers_are_range_checked(field, bad, good):
    ok, errors = validate(prompt="retro sunset cat", **{field: bad})
    assert not ok and list(errors) == [field]
    assert validate(prompt="retro sunset cat", **{field: good})[0]


@pytest.mark.parametrize("value", [True, "ten", [3], {"a": 1}, float("nan"), "1e999"])
def test_wrong_types_for_numbers_are_refused(value):
    ok, errors = validate(prompt="retro sunset cat", guidance=value, batch_size=value)
    assert not ok and set(errors) == {"guidance", "batch_size"}


@pytest.mark.parametrize("value", [123456, 1.5, True, ["retro sunset cat"], {"text": "retro"}])
def test_text_fields_must_be_strings(value):
    ok, errors = validate(prompt=value, style=value)
    assert not ok and set(errors) == {"prompt", "style"}


def test_unknown_backend_lists_the_allowed_ones():
    ok, errors = validate(prompt="retro sunset cat", backend="dalle")
    assert not ok
    assert "procedural, comfyui, runpod" in str(errors["backend"][0])


def test_backend_without_configuration_is_refused(settings):
    settings.RUNPOD_API_KEY = ""
    ok, errors = validate(prompt="retro sunset cat", backend="runpod")
    assert not ok and "RUNPOD_API_KEY" in str(errors["backend"][0])


@pytest.mark.parametrize(
    "prompt",
    [
        "cat <script>alert(1)</script>",
        "cat javascript:alert(1)",
        'cat <img src=x onerror="x">',
        "a <b>bold</b> cat",
        "cat onmouseover = steal()",
        "< script >x",
    ],
)
def test_markup_and_scripts_are_refused(prompt):
    ok, errors = validate(prompt=prompt)
    assert not ok and "Markup" in str(errors["prompt"][0])


def test_prompt_is_trimmed_cleaned_and_folded():
    ok, data = validate(prompt="  retro\x00 sunset\n\n  cat\x07\t ", style=" pop\x1b art ")
    assert ok
    assert data["prompt"] == "retro sunset cat"
    assert data["style"] == "pop art"


def test_prompt_length_is_counted_after_cleaning():
    assert not validate(prompt="a\x00\x01b")[0]
    assert not validate(prompt="x" * 2001)[0]
    assert validate(prompt="abc")[0] and validate(prompt="x" * 2000)[0]


def test_innocent_words_are_not_mistaken_for_markup():
    for prompt in ["a lion = king of the jungle", "1 < 2 and 3 > 2", "on top of the world", "cat: javascript fan"]:
        assert validate(prompt=prompt)[0], prompt


def test_validate_prompt_raises_validation_error():
    with pytest.raises(serializers.ValidationError):
        validate_prompt("<p>hi</p>")
    assert validate_prompt("  hello\r\nworld ") == "hello world"


def test_clean_text_keeps_newlines_unless_folding():
    assert clean_text(" a\nb\x00 ") == "a\nb"
    assert clean_text(" a\n b ", fold_newlines=True) == "a b"
    assert clean_text("a\ud800b") == "ab"


def test_prompt_hash_normalises_prompt_and_uses_seed_only_when_given():
    base = {"width": 4500, "height": 5400, "steps": 30, "guidance": 2.0}
    h = prompt_hash(prompt="Retro  Sunset\nCat", seed=None, **base)
    assert h == prompt_hash(prompt="retro sunset cat", seed=None, **base)
    assert h != prompt_hash(prompt="retro sunset cat", seed=1, **base)
    assert prompt_hash(prompt="x y z", seed=1, **base) != prompt_hash(prompt="x y z", seed=2, **base)
    assert h != prompt_hash(prompt="retro sunset cat", seed=None, **{**base, "steps": 31})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
FIELDS = ["prompt", "style", "genre", "negative_prompt", "batch_size", "width", "height", "steps", "guidance",
          "cfg_scale", "seed", "backend", "allow_duplicate"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), json_values))
def test_any_json_body_validates_or_is_refused_without_crashing(body):
    serializer = GenerateInputSerializer(data=body)
    if serializer.is_valid():
        data = serializer.validated_data
        assert 3 <= len(data["prompt"]) <= 2000
        assert 1 <= data["batch_size"] <= 25
    else:
        assert serializer.errors


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=300))
def test_any_unicode_prompt_is_cleaned_or_refused(text):
    serializer = GenerateInputSerializer(data={"prompt": text})
    if serializer.is_valid():
        prompt = serializer.validated_data["prompt"]
        assert prompt == prompt.strip() and "\n" not in prompt and "\x00" not in prompt
        assert all(ord(ch) >= 32 or ch == "\t" for ch in prompt)
        prompt.encode("utf-8")  # no lone surrogates left
    else:
        assert "prompt" in serializer.errors


@pytest.mark.parametrize("size", [2001, 30_000, 2_000_000])
def test_huge_strings_are_refused(size):
    ok, errors = validate(prompt="a" * size, style="b" * size, guidance="9" * size)
    assert not ok and {"prompt", "style", "guidance"} <= set(errors)


def test_non_object_body_is_refused():
    for body in (["prompt"], "prompt", 3, None):
        serializer = GenerateInputSerializer(data=body)
        assert not serializer.is_valid()
