"""A stand-in ComfyUI server: POST /prompt, GET /history/{id}, GET /view, POST /queue and /interrupt.

- `queue_polls`: history polls that find nothing yet (queued/running) before the prompt finishes;
- `fail_next`: this many next prompts end with an execution_error;
- `reject_next`: this many next POST /prompt answer 400 with node_errors (an invalid graph).
`submissions` counts accepted prompts; `deleted` lists ids removed through POST /queue.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers import JSONHandler, StandInServer, graph_output_size, picture


class ComfyUIHandler(JSONHandler):
    server: ComfyUIServer

    def do_POST(self) -> None:  # noqa: N802
        self._record()
        s = self.server
        body = self.read_json() or {}
        if self.path == "/prompt":
            graph = body.get("prompt")
            with s.lock:
                reject = s.reject_next > 0
                s.reject_next -= reject
            if reject or not isinstance(graph, dict):
                self.send_json(400, {"error": {"type": "prompt_outputs_failed_validation",
                                               "message": "Prompt outputs failed validation"},
                                     "node_errors": {"1": {"errors": [{"message": "Value not in list"}]}}})
                return
            prompt_id = s.create(graph)
            self.send_json(200, {"prompt_id": prompt_id, "number": s.submissions, "node_errors": {}})
            return
        if self.path == "/queue":
            with s.lock:
                s.deleted.extend(body.get("delete", []))
            self.send_json(200, {})
            return
        if self.path == "/interrupt":
            self.send_json(200, {})
            return
        self.send_json(404, {"error": "not found"})

    def do_GET(self) -> None:  # noqa: N802
        self._record()
        s = self.server
        parts = urlsplit(self.path)
        match = re.fullmatch(r"/history/([\w-]+)", parts.path)
        if match:
            self.send_json(200, s.history(match.group(1)))
            return
        if parts.path == "/view":
            query = parse_qs(parts.query)
            name = query.get("filename", [""])[0]
            if query.get("type") != ["output"] or name not in s.files:
                self.send_json(404, {"error": "file not found"})
                return
            self.send_bytes(s.files[name])
            return
        self.send_json(404, {"error": "not found"})


class ComfyUIServer(StandInServer):
    def __init__(self) -> None:
        super().__init__(ComfyUIHandler)
        self.prompts: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.submissions = 0
        self.deleted: list[str] = []
        self.queue_polls = 0
        self.fail_next = 0
        self.reject_next = 0
        self._ids = itertools.count(1)

    def create(self, graph: dict[str, Any]) -> str:
        width, height, seed = graph_output_size(graph)
        with self.lock:
            self.submissions += 1
            number = next(self._ids)
            prompt_id = f"prompt-{number}"
            fail = self.fail_next > 0
            self.fail_next -= fail
            filename = f"pod_gateway_{number:05d}_.png"
            self.files[filename] = picture(width, height, seed)
            self.prompts[prompt_id] = {"graph": graph, "polls": 0, "fail": fail, "filename": filename}
        return prompt_id

    def history(self, prompt_id: str) -> dict[str, Any]:
        with self.lock:
            entry = self.prompts.get(prompt_id)
            if entry is None:
                return {}
            entry["polls"] += 1
            if entry["polls"] <= self.queue_polls:
                return {}
        if entry["fail"]:
            status = {"status_str": "error", "completed": False, "messages": [
                ["execution_start", {"prompt_id": prompt_id}],
                ["execution_error", {"prompt_id": prompt_id, "node_id": "6", "node_type": "KSampler",
                                     "exception_message": "Allocation on device failed"}],
            ]}
            return {prompt_id: {"prompt": [], "outputs": {}, "status": status}}
        outputs = {"9": {"images": [{"filename": entry["filename"], "subfolder": "", "type": "output"}]}}
        status = {"status_str": "success", "completed": True, "messages": []}
        return {prompt_id: {"prompt": [], "outputs": outputs, "status": status}}
