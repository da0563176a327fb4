"""Views for tests/serving/test_handler.py: which thread ran a request, and a stream that records its reads."""

from __future__ import annotations

import threading

from django.core.signals import request_finished, request_started
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import get_script_prefix, path

# What the signals and views saw, in order: (what, thread name).
seen: list[tuple[str, str]] = []
# Chunks the streamed view has produced so far, with the thread and script prefix each was read with.
produced: list[tuple[int, str, str]] = []
CHUNKS = 8
CHUNK = b"x" * 100_000


def on_started(**kwargs) -> None:
    seen.append(("started", threading.current_thread().name))


def on_finished(**kwargs) -> None:
    seen.append(("finished", threading.current_thread().name))


def thread_view(request):
    seen.append(("view", threading.current_thread().name))
    return JsonResponse({"thread": threading.current_thread().name})


def stream_view(request):
    def chunks():
        for n in range(CHUNKS):
            produced.append((n, threading.current_thread().name, get_script_prefix()))
            yield CHUNK

    return StreamingHttpResponse(chunks(), content_type="application/octet-stream")


def failing_finish(**kwargs) -> None:
    raise RuntimeError("a request_finished receiver failed")


def plain_view(request):
    return HttpResponse(b"hello")


urlpatterns = [path("thread", thread_view), path("stream", stream_view), path("plain", plain_view)]

__all__ = ["on_finished", "on_started", "request_finished", "request_started"]
