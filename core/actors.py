"""Who makes a change and through which door: recorded on every history row and event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models


class Via(models.TextChoices):
    API = "api"
    ADMIN = "admin"
    COMMAND = "command"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who makes a change (a user, or the system) and through which door (api, admin, command, system)."""

    user: AbstractBaseUser | None = None
    via: str = Via.SYSTEM

    @property
    def label(self) -> str:
        return self.user.get_username() if self.user is not None else "system"

    @property
    def user_id(self) -> object | None:
        return self.user.pk if self.user is not None else None

    @classmethod
    def system(cls) -> Actor:
        return cls(None, Via.SYSTEM)


def api_actor(request: Any) -> Actor:
    """The user of an API request, acting through the API."""
    return Actor(request.user, Via.API)
