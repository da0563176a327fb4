"""The three roles of the API and the admin as Django groups; each app's migration grants its own permissions.

A role has its own permissions and those of every role before it: a reviewer can do what a client
can, a publisher what a reviewer can. Migrations call `roles_grant` / `roles_revoke` with
`{role: ["app_label.codename", …]}`, usually through `roles_operation`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("clients", "reviewers", "publishers")
# The role names of `manage.py create_api_token --role`.
ROLE_GROUPS = {"client": "clients", "reviewer": "reviewers", "publisher": "publishers"}


def _cumulative(grants: dict[str, list[str]]) -> dict[str, set[tuple[str, str]]]:
    wanted: dict[str, set[tuple[str, str]]] = {role: set() for role in ROLES}
    for role, codenames in grants.items():
        for later in ROLES[ROLES.index(role):]:
            wanted[later] |= {tuple(name.split(".", 1)) for name in codenames}  # type: ignore[misc]
    return wanted


def roles_grant(apps: Any, grants: dict[str, list[str]]) -> None:
    """Create the groups if needed and give each role, and every role above it, these permissions."""
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, wanted in _cumulative(grants).items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = [
            p for p in Permission.objects.select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        missing = wanted - {(p.content_type.app_label, p.codename) for p in perms}
        if missing:
            raise RuntimeError(f"Permissions missing for role {role}: {sorted(missing)}")
        group.permissions.add(*perms)


def roles_revoke(apps: Any, grants: dict[str, list[str]]) -> None:
    """Take these permissions back from the roles (the reverse of `roles_grant`)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, wanted in _cumulative(grants).items():
        group = Group.objects.filter(name=role).first()
        if group is None:
            continue
        perms = [
            p for p in Permission.objects.select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        group.permissions.remove(*perms)


def roles_operation(grants: dict[str, list[str]]) -> migrations.RunPython:
    """The migration operation that grants `grants` (and takes them back when migrating backwards)."""

    def grant(apps: Any, schema_editor: Any) -> None:
        roles_grant(apps, grants)

    def revoke(apps: Any, schema_editor: Any) -> None:
        roles_revoke(apps, grants)

    return migrations.RunPython(grant, revoke)
