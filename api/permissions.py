"""Who may call what: each view maps its actions to the Django permissions the roles carry.

The roles (`clients`, `reviewers`, `publishers`) are Django groups (core/roles.py; each app's migration
grants its own permissions); superusers hold every permission. Anonymous callers get 401, authenticated ones without the
permission 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:  # DRF imports the permission classes while rest_framework.views is still loading.
    from rest_framework.views import APIView

class ActionPermission(BasePermission):
    """Signed in, and holding every permission `view.action_permissions[action]` lists.

    `action` is the ViewSet action (`list`, `approve`, …) or, on a plain APIView, the lower-case
    method (`get`, `post`). An action the view does not list is refused, so a forgotten entry fails closed.
    """

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        method = request.method.lower()
        if method not in view.http_method_names:
            # The view refuses this method (e.g. PUT where only PATCH is offered): let the 405 through.
            return True
        if method == "options":
            # DRF's metadata (OPTIONS) describes the endpoint; being signed in is enough to read it.
            return True
        action = getattr(view, "action", None)
        if action is None:
            if hasattr(view, "action_map") or not hasattr(view, method):
                # A method the view does not answer: let the 405 (not a 403) reach the caller.
                return True
            action = "get" if method == "head" else method
        required = getattr(view, "action_permissions", {}).get(action)
        if required is None:
            return False
        return user.has_perms(required)


class PublicEndpoint(BasePermission):
    """Operational endpoints (version, health) that anyone may read."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return True


class ActionPolicyMixin:
    """For ViewSets: per-action Django permissions and rate tiers.

    `action_permissions` maps an action to the permissions it needs (checked by ActionPermission).
    `action_rate_tiers` gives DRF's built-in actions (create, destroy) their tier: unlike `@action`
    they take no keyword arguments, and the throttle (which runs inside `initial`) reads `rate_tier`.
    """

    permission_classes = [ActionPermission]
    action_permissions: dict[str, list[str]] = {}
    action_rate_tiers: dict[str, str] = {}
    # Set per action (`@action(..., rate_tier=...)` or `action_rate_tiers`); GET/HEAD are always `read`.
    rate_tier: str | None = None

    def initial(self, request: Request, *args, **kwargs) -> None:
        tier = self.action_rate_tiers.get(getattr(self, "action", None) or "")
        if tier:
            self.rate_tier = tier
        super().initial(request, *args, **kwargs)
