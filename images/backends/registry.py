"""Which backend a generation runs on: configured from settings, refused with a reason when it cannot be used."""

from __future__ import annotations

from django.conf import settings

from images.backends.base import Backend, BackendError
from images.backends.comfyui import ComfyUIBackend
from images.backends.procedural import ProceduralBackend
from images.backends.runpod import RunPodBackend


def configuration_error(name: str) -> str:
    """Why backend `name` cannot be used with the current settings, or "" if it can."""
    if name not in settings.GENERATION_BACKENDS:
        return f"Unknown backend {name!r}. Allowed: {', '.join(settings.GENERATION_BACKENDS)}."
    if name == "comfyui" and not settings.COMFYUI_API_URL:
        return "The comfyui backend needs COMFYUI_API_URL."
    if name == "runpod":
        missing = [var for var in ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID") if not getattr(settings, var)]
        if missing:
            return f"The runpod backend needs {' and '.join(missing)}."
    return ""


def get_backend(name: str) -> Backend:
    """The backend called `name`, configured from settings; BackendError if it cannot be used."""
    problem = configuration_error(name)
    if problem:
        raise BackendError(problem)
    if name == "comfyui":
        return ComfyUIBackend()
    if name == "runpod":
        return RunPodBackend()
    return ProceduralBackend()
