"""`manage.py create_api_token USERNAME [--role …]`: a DRF token for a (new) user; the token is the last line."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

ROLE_GROUPS = {"client": "clients", "reviewer": "reviewers", "publisher": "publishers"}
STAFF_ROLES = {"reviewer", "publisher"}


class Command(BaseCommand):
    help = "Create (or show) the API token of USERNAME, creating the user and giving the role if needed"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--role", choices=[*ROLE_GROUPS, "admin"], default=None,
            help="Role to give the user (default: client for a new user; an existing user keeps its roles)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        role = options["role"]
        User = get_user_model()
        field = User._meta.get_field(User.USERNAME_FIELD)
        try:
            username = field.clean(username, None)
        except Exception as exc:  # ValidationError: messages name what is wrong with the username
            raise CommandError(f"Invalid username {options['username']!r}: {' '.join(exc.messages)}") from None
        with transaction.atomic():
            user, created = User.objects.get_or_create(**{User.USERNAME_FIELD: username})
            if created:
                # Token-only users have no password until an admin sets one.
                user.set_unusable_password()
                user.save(update_fields=["password"])
                self.stdout.write(f"Created user {username}")
            if role is None and created:
                role = "client"
            if role is not None:
                self._give_role(user, role)
            token, token_created = Token.objects.get_or_create(user=user)
        self.stdout.write(f"{'Created' if token_created else 'Existing'} API token for {username}:")
        self.stdout.write(token.key)

    def _give_role(self, user: Any, role: str) -> None:
        username = user.get_username()
        if role == "admin":
            if not (user.is_superuser and user.is_staff):
                user.is_superuser = user.is_staff = True
                user.save(update_fields=["is_superuser", "is_staff"])
                self.stdout.write(f"Made {username} a superuser")
            return
        group = Group.objects.filter(name=ROLE_GROUPS[role]).first()
        if group is None:
            raise CommandError(f"Group {ROLE_GROUPS[role]} is missing; run manage.py migrate")
        if not user.groups.filter(pk=group.pk).exists():
            user.groups.add(group)
            self.stdout.write(f"Added {username} to {group.name}")
        # Reviewers and publishers work in the admin too (once they have a password).
        if role in STAFF_ROLES and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            self.stdout.write(f"Gave {username} access to the admin")
