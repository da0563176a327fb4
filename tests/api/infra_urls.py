"""A small URLconf of real DRF views for the API-machinery tests (rate limits, idempotency, request ids).

The machinery is cross-cutting, so it is exercised on views whose side effects the tests can count
(each `POST things` creates one Group row) and hold open (`{"wait": true}` blocks until released).
"""

from __future__ import annotations

import logging
import threading
import uuid

from django.contrib.auth.models import Group
from django.db import OperationalError
from django.urls import path
from psycopg_pool import PoolTimeout
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.logging import current_request_id
from pod_gateway.views import metrics_view, ready

logger = logging.getLogger("tests.infra")

# Set by a test to make the next `POST things` answer 503 (a request that did not complete).
FAIL = threading.Event()
# A `POST things` with {"wait": true} blocks until a test sets this.
RELEASE = threading.Event()
STARTED = threading.Event()


class LimitedView(APIView):
    permission_classes = [AllowAny]
    rate_tier = "approval"

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})


class UntieredView(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        return Response({"ok": True})


class ThingsView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request):
        if FAIL.is_set():
            return Response({"error": "unavailable"}, status=503)
        if request.data.get("wait"):
            STARTED.set()
            RELEASE.wait(20)
        group = Group.objects.create(name=f"thing-{uuid.uuid4().hex}")
        logger.info("created %s", group.name)
        return Response(
            {"id": group.pk, "name": group.name, "request_id": current_request_id()},
            status=201,
            headers={"Location": f"/api/things/{group.pk}"},
        )


class ThingView(APIView):
    permission_classes = [AllowAny]

    def get(self, request, thing_id: str):
        logger.warning("looking at %s", thing_id)
        return Response({"thing_id": thing_id, "request_id": current_request_id()})


class PoolExhaustedView(APIView):
    """What Django raises when its psycopg pool hands out no connection in time."""

    permission_classes = [AllowAny]

    def get(self, request):
        try:
            raise PoolTimeout("couldn't get a connection after 10.00 sec")
        except PoolTimeout as exc:
            raise OperationalError(str(exc)) from exc


urlpatterns = [
    path("api/busy", PoolExhaustedView.as_view()),
    path("api/v2/busy", PoolExhaustedView.as_view()),
    path("api/limited", LimitedView.as_view()),
    path("api/v2/limited", LimitedView.as_view()),
    path("api/untiered", UntieredView.as_view()),
    path("api/things", ThingsView.as_view()),
    path("api/v2/things", ThingsView.as_view()),
    path("api/things/<str:thing_id>", ThingView.as_view()),
    path("api/metrics", metrics_view),
    path("api/ready", ready),
]
