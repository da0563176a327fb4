"""A stand-in RunPod serverless endpoint speaking the documented /run, /status, /cancel API.

Behaviour is steered through attributes of the server:
- `queue_polls`: status polls answered IN_QUEUE before a job moves on (a slow queue);
- `hold`: while True, jobs stay IN_PROGRESS (a long job; e.g. to kill a worker mid-job);
- `outcomes`: final statuses for the next submitted jobs, in order (default COMPLETED);
- `rate_limited`: this many next requests get 429 with `Retry-After: 1`;
- `lost_answers`: this many next /run calls create the job but answer 500 (a proxy failing after acceptance);
- `submit_delay`: seconds /run waits after creating the job before it answers (a client timeout);
- `output_mode`: "base64" (worker-comfyui `data`) or "url" (an image URL served here).
`submissions` counts POST /run, `cancelled` lists cancelled job ids.
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from typing import Any

from tests.servers import JSONHandler, StandInServer, graph_output_size, picture

API_KEY = "rp-test-key"
ENDPOINT_ID = "endpoint123"


class RunPodHandler(JSONHandler):
    server: RunPodServer

    def _guard(self) -> bool:
        self._record()
        s = self.server
        with s.lock:
            if s.rate_limited > 0:
                s.rate_limited -= 1
                limited = True
            else:
                limited = False
        if limited:
            self.send_json(429, {"error": "Too many requests"}, headers={"Retry-After": "1"})
            return False
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self.send_json(401, {"error": "Unauthorized"})
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802
        if not self._guard():
            return
        s = self.server
        if self.path == f"/v2/{ENDPOINT_ID}/run":
            body = self.read_json() or {}
            workflow = (body.get("input") or {}).get("workflow")
            if not isinstance(workflow, dict):
                self.send_json(400, {"error": "input.workflow is required"})
                return
            job_id = s.create_job(workflow)
            time.sleep(s.submit_delay)
            with s.lock:
                lost, s.lost_answers = s.lost_answers > 0, max(0, s.lost_answers - 1)
            if lost:
                self.send_json(500, {"error": "upstream connect error"})
                return
            self.send_json(200, {"id": job_id, "status": "IN_QUEUE"})
            return
        match = re.fullmatch(rf"/v2/{ENDPOINT_ID}/cancel/([\w-]+)", self.path)
        if match and match.group(1) in s.jobs:
            with s.lock:
                s.cancelled.append(match.group(1))
                s.jobs[match.group(1)]["final"] = "CANCELLED"
            self.send_json(200, {"id": match.group(1), "status": "CANCELLED"})
            return
        self.send_json(404, {"error": "not found"})

    def do_GET(self) -> None:  # noqa: N802
        s = self.server
        match = re.fullmatch(r"/files/([\w-]+)\.png", self.path)
        if match and match.group(1) in s.jobs:
            self._record()
            self.send_bytes(s.jobs[match.group(1)]["png"])
            return
        if not self._guard():
            return
        match = re.fullmatch(rf"/v2/{ENDPOINT_ID}/status/([\w-]+)", self.path)
        job = s.jobs.get(match.group(1)) if match else None
        if job is None:
            self.send_json(404, {"error": "job not found"})
            return
        self.send_json(200, s.status(job))


class RunPodServer(StandInServer):
    def __init__(self) -> None:
        super().__init__(RunPodHandler)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submissions = 0
        self.cancelled: list[str] = []
        self.queue_polls = 0
        self.hold = False
        self.outcomes: list[str] = []
        self.rate_limited = 0
        self.lost_answers = 0
        self.submit_delay = 0.0
        self.output_mode = "base64"
        self._ids = itertools.count(1)

    @property
    def api_url(self) -> str:
        return f"{self.url}/v2"

    def create_job(self, workflow: dict[str, Any]) -> str:
        width, height, seed = graph_output_size(workflow)
        with self.lock:
            self.submissions += 1
            job_id = f"job-{next(self._ids)}"
            final = self.outcomes.pop(0) if self.outcomes else "COMPLETED"
            self.jobs[job_id] = {"polls": 0, "final": final, "workflow": workflow,
                                 "png": picture(width, height, seed)}
        return job_id

    def status(self, job: dict[str, Any]) -> dict[str, Any]:
        job_id = next(key for key, value in self.jobs.items() if value is job)
        with self.lock:
            job["polls"] += 1
            if job["final"] != "CANCELLED":
                if job["polls"] <= self.queue_polls:
                    return {"id": job_id, "status": "IN_QUEUE"}
                if self.hold:
                    return {"id": job_id, "status": "IN_PROGRESS"}
        final = job["final"]
        if final == "COMPLETED":
            if self.output_mode == "url":
                image = {"filename": f"{job_id}.png", "type": "s3_url", "data": f"{self.url}/files/{job_id}.png"}
            else:
                image = {"filename": f"{job_id}.png", "type": "base64",
                         "data": base64.b64encode(job["png"]).decode()}
            return {"id": job_id, "status": "COMPLETED", "executionTime": 1000, "output": {"images": [image]}}
        if final == "FAILED":
            return {"id": job_id, "status": "FAILED", "error": "CUDA out of memory"}
        return {"id": job_id, "status": final}
