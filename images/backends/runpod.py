"""`runpod`: a RunPod serverless endpoint running ComfyUI (worker-comfyui style input and output)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings

from images.backends import http
from images.backends.base import BackendError, GenerationRequest, JobResult, JobState
from images.backends.workflow import flux_graph

SERVICE = "RunPod"
PENDING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
# Terminal states other than COMPLETED, with the reason a reviewer sees.
FAILURES = {
    "FAILED": "RunPod job failed",
    "CANCELLED": "RunPod job was cancelled",
    "TIMED_OUT": "RunPod job timed out",
}


class RunPodBackend:
    """`/run` the Flux graph, poll `/status/{id}`, decode `output.images[]` (base64 or URL)."""

    name = "runpod"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        endpoint_id: str | None = None,
        api_key: str | None = None,
        checkpoint: str | None = None,
    ) -> None:
        base = (base_url or settings.RUNPOD_API_URL).rstrip("/")
        self.endpoint_url = f"{base}/{endpoint_id or settings.RUNPOD_ENDPOINT_ID}"
        self.checkpoint = checkpoint or settings.COMFYUI_CHECKPOINT
        self._headers = {"Authorization": f"Bearer {api_key or settings.RUNPOD_API_KEY}"}
        self._submit_session = http.session(idempotent=False)
        self._session = http.session(idempotent=True)

    def _call(self, session: Any, method: str, path: str, request_id: str | None, **kwargs: Any) -> Any:
        response = http.request(
            session, method, f"{self.endpoint_url}{path}",
            service=SERVICE, request_id=request_id, headers=self._headers, **kwargs,
        )
        return http.json_body(response, service=SERVICE)

    def submit(self, request: GenerationRequest) -> str:
        body = {"input": {"workflow": flux_graph(request, checkpoint=self.checkpoint)}}
        job = self._call(self._submit_session, "POST", "/run", request.request_id, json=body)
        job_id = job.get("id") if isinstance(job, dict) else None
        if not job_id:
            raise BackendError("RunPod accepted the job but returned no id")
        return str(job_id)

    def poll(self, job_id: str, request: GenerationRequest) -> JobResult:
        try:
            job = self._call(self._session, "GET", f"/status/{job_id}", request.request_id)
        except BackendError as exc:
            if exc.details.get("status_code") == 404:
                return JobResult.failed("RunPod no longer knows this job (results expire after a while)")
            raise
        status = str(job.get("status", ""))
        if status in PENDING:
            return JobResult.pending()
        if status in FAILURES:
            error = job.get("error") or ""
            return JobResult.failed(f"{FAILURES[status]}: {error}" if error else FAILURES[status])
        if status != "COMPLETED":
            return JobResult.pending()  # an unknown interim state; the generation timeout bounds the wait
        output = job.get("output")
        if isinstance(output, dict) and output.get("error"):
            return JobResult.failed(f"RunPod worker error: {output['error']}")
        entries = output.get("images") if isinstance(output, dict) else None
        if not entries:
            return JobResult.failed("RunPod job completed without images")
        return JobResult(JobState.COMPLETED, images=[self._image(entry, request.request_id) for entry in entries])

    def _image(self, entry: Any, request_id: str | None) -> bytes:
        if isinstance(entry, str):
            entry = {"data": entry}
        if not isinstance(entry, dict):
            raise BackendError("RunPod returned an image entry that is not an object")
        url = entry.get("url") or ""
        data = entry.get("data") or ""
        if not url and (entry.get("type") in ("s3_url", "url") or str(data).startswith(("http://", "https://"))):
            url = data
        if url:
            return http.download(self._session, str(url), service=SERVICE, request_id=request_id)
        if isinstance(data, str) and data.startswith("data:"):
            data = data.partition(",")[2]
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise BackendError("RunPod returned image data that is not valid base64") from exc

    def cancel(self, job_id: str, request_id: str | None = None) -> None:
        try:
            self._call(self._session, "POST", f"/cancel/{job_id}", request_id)
        except BackendError:
            pass  # best effort: the job may have finished meanwhile
