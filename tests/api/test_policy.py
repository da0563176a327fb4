"""Every versioned write declares its rate tier; every permission named is a real one."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

WRITE_TIERS = {"generation", "publishing", "approval"}
READ_METHODS = {"get", "head", "options"}


def versioned_views():
    """(pattern, view class, {method: action or None}, initkwargs) for every route under /api/<version>/."""
    api = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "api/")
    versions = next(p for p in api.url_patterns if isinstance(p, URLResolver) and "version" in str(p.pattern))

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern

    for pattern in walk(versions.url_patterns):
        callback = pattern.callback
        cls = callback.cls
        actions = getattr(callback, "actions", None)
        if actions is None:
            actions = {m: None for m in cls.http_method_names if hasattr(cls, m) and m not in ("options", "head")}
        yield str(pattern.pattern), cls, actions, getattr(callback, "initkwargs", {})


def test_every_write_declares_a_rate_tier_and_names_real_permissions():
    known = {f"{app}.{code}" for app, code in Permission.objects.values_list("content_type__app_label", "codename")}
    checked = 0
    for route, cls, actions, initkwargs in versioned_views():
        for method, action in actions.items():
            key = action or method
            required = cls.action_permissions.get(key)
            if required is None:
                continue  # not offered: ActionPermission refuses it for everyone (fails closed)
            assert set(required) <= known, f"{route} {method}: unknown permissions {set(required) - known}"
            if method not in READ_METHODS:
                tier = (
                    initkwargs.get("rate_tier")
                    or getattr(cls, "action_rate_tiers", {}).get(key)
                    or getattr(cls, "rate_tier", None)
                )
                assert tier in WRITE_TIERS, f"{route} {method}: rate tier {tier!r}"
            checked += 1
    assert checked >= 20
