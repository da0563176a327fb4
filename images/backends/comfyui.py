"""`comfyui`: a ComfyUI server's HTTP API (POST /prompt, GET /history/{id}, GET /view)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from images.backends import http
from images.backends.base import BackendError, GenerationRequest, JobResult, JobState
from images.backends.workflow import flux_graph

SERVICE = "ComfyUI"
CLIENT_ID = "pod-gateway"


class ComfyUIBackend:
    """Queues the Flux graph on ComfyUI, reads the result from its history, fetches the file."""

    name = "comfyui"

    def __init__(self, *, base_url: str | None = None, checkpoint: str | None = None) -> None:
        self.base_url = (base_url or settings.COMFYUI_API_URL).rstrip("/")
        self.checkpoint = checkpoint or settings.COMFYUI_CHECKPOINT
        self._submit_session = http.session(idempotent=False)
        self._session = http.session(idempotent=True)

    def submit(self, request: GenerationRequest) -> str:
        body = {"prompt": flux_graph(request, checkpoint=self.checkpoint), "client_id": CLIENT_ID}
        try:
            response = http.request(
                self._submit_session, "POST", f"{self.base_url}/prompt",
                service=SERVICE, request_id=request.request_id, json=body,
            )
        except BackendError as exc:
            raise BackendError(f"ComfyUI refused the workflow: {exc.message}") from exc
        prompt_id = http.json_body(response, service=SERVICE).get("prompt_id")
        if not prompt_id:
            raise BackendError("ComfyUI accepted the workflow but returned no prompt_id")
        return str(prompt_id)

    def poll(self, job_id: str, request: GenerationRequest) -> JobResult:
        response = http.request(
            self._session, "GET", f"{self.base_url}/history/{job_id}", service=SERVICE, request_id=request.request_id
        )
        entry = http.json_body(response, service=SERVICE).get(job_id)
        if not entry:
            return JobResult.pending()  # still queued or running: history only lists finished prompts
        if not isinstance(entry, dict):
            raise BackendError("ComfyUI answered with a history entry that is not an object")
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        if status.get("status_str") == "error":
            return JobResult.failed(_error_message(status))
        outputs = entry.get("outputs") if isinstance(entry.get("outputs"), dict) else {}
        files = [
            image
            for output in outputs.values() if isinstance(output, dict)
            for image in (output.get("images") or []) if isinstance(image, dict)
            if image.get("type", "output") == "output"
        ]
        if not files:
            if status.get("completed", True):
                return JobResult.failed("ComfyUI finished the workflow without saving an image")
            return JobResult.pending()
        images = [self._fetch(image, request.request_id) for image in files]
        return JobResult(JobState.COMPLETED, images=images)

    def _fetch(self, image: dict[str, Any], request_id: str | None) -> bytes:
        params = {
            "filename": image.get("filename", ""),
            "subfolder": image.get("subfolder", ""),
            "type": image.get("type", "output"),
        }
        return http.download(
            self._session, f"{self.base_url}/view?{urlencode(params)}", service=SERVICE, request_id=request_id
        )

    def cancel(self, job_id: str, request_id: str | None = None) -> None:
        """Drop the prompt from the queue, and interrupt it if it is the one running."""
        for path, body in (("/queue", {"delete": [job_id]}), ("/interrupt", {"prompt_id": job_id})):
            try:
                http.request(
                    self._session, "POST", f"{self.base_url}{path}", service=SERVICE, request_id=request_id, json=body
                )
            except BackendError:
                pass  # best effort: the job may already be gone


def _error_message(status: dict[str, Any]) -> str:
    for message in status.get("messages") or []:
        if isinstance(message, list) and len(message) == 2 and message[0] == "execution_error":
            detail = message[1] or {}
            return f"ComfyUI error in {detail.get('node_type', 'a node')}: {detail.get('exception_message', '')}"
    return "ComfyUI reported an error running the workflow"
