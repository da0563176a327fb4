"""Backends against real HTTP stand-ins of ComfyUI and RunPod, and the deterministic procedural one."""

import io
import socket

import pytest
from PIL import Image

from images.backends.base import BackendError, GenerationRequest, JobState, TransientBackendError
from images.backends.comfyui import ComfyUIBackend
from images.backends.procedural import render
from images.backends.registry import get_backend
from images.backends.runpod import RunPodBackend
from images.backends.workflow import sample_size
from tests.servers.comfyui import ComfyUIServer
from tests.servers.runpod import API_KEY, ENDPOINT_ID

REQUEST = GenerationRequest(
    prompt="retro sunset cat", width=600, height=720, steps=12, guidance=3.5, seed=42,
    style="pop art", negative_prompt="blurry", request_id="req-123",
)


@pytest.fixture
def comfyui_server():
    server = ComfyUIServer().start()
    yield server
    server.stop()


@pytest.fixture
def runpod(runpod_server):
    return RunPodBackend(base_url=runpod_server.api_url, endpoint_id=ENDPOINT_ID, api_key=API_KEY, checkpoint="flux.st")


@pytest.fixture
def comfyui(comfyui_server):
    return ComfyUIBackend(base_url=comfyui_server.url, checkpoint="flux1-dev-fp8.safetensors")


@pytest.fixture
def refused_url():
    """A loopback port held bound but not listening: connections are refused, whatever else runs on the host."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


def size_of(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


def poll_until_done(backend, job_id, request=REQUEST, limit=20):
    for _ in range(limit):
        result = backend.poll(job_id, request)
        if result.state != JobState.PENDING:
            return result
    raise AssertionError("job never finished")


# --- procedural ----------------------------------------------------------------------------------

def test_procedural_is_deterministic_and_seed_dependent():
    assert render(REQUEST) == render(REQUEST)
    other_seed = GenerationRequest(**{**REQUEST.__dict__, "seed": 43})
    other_prompt = GenerationRequest(**{**REQUEST.__dict__, "prompt": "retro sunset dog"})
    assert render(REQUEST) != render(other_seed)
    assert render(REQUEST) != render(other_prompt)


def test_procedural_draws_the_print_size_at_300_dpi():
    request = GenerationRequest(prompt="big", width=4500, height=5400, steps=30, guidance=2, seed=1)
    result = get_backend("procedural").poll(get_backend("procedural").submit(request), request)
    assert result.state == JobState.COMPLETED
    image = Image.open(io.BytesIO(result.images[0]))
    assert image.size == (4500, 5400) and image.format == "PNG"
    assert round(image.info["dpi"][0]) == 300


# --- ComfyUI -------------------------------------------------------------------------------------

def test_comfyui_submits_a_flux_graph_polls_history_and_fetches_the_file(comfyui, comfyui_server):
    comfyui_server.queue_polls = 2
    job_id = comfyui.submit(REQUEST)
    assert comfyui.poll(job_id, REQUEST).state == JobState.PENDING  # slow queue: not in history yet
    result = poll_until_done(comfyui, job_id)
    assert result.state == JobState.COMPLETED
    assert size_of(result.images[0]) == (600, 720)

    graph = comfyui_server.prompts[job_id]["graph"]
    nodes = {node["class_type"]: node["inputs"] for node in graph.values()}
    assert nodes["CheckpointLoaderSimple"]["ckpt_name"] == "flux1-dev-fp8.safetensors"
    assert nodes["KSampler"]["seed"] == 42 and nodes["KSampler"]["steps"] == 12
    assert nodes["FluxGuidance"]["guidance"] == 3.5
    assert "retro sunset cat" in graph["2"]["inputs"]["text"] and "pop art" in graph["2"]["inputs"]["text"]
    assert "SaveImage" in nodes
    paths = comfyui_server.paths("GET")
    assert any(p.startswith("/view?") and "type=output" in p for p in paths)
    headers = [h for _, _, h in comfyui_server.requests]
    assert all(h.get("X-Request-ID") == "req-123" for h in headers)


def test_comfyui_execution_error_fails_the_job_with_its_message(comfyui, comfyui_server):
    comfyui_server.fail_next = 1
    result = poll_until_done(comfyui, comfyui.submit(REQUEST))
    assert result.state == JobState.FAILED
    assert "KSampler" in result.error and "Allocation on device failed" in result.error


def test_comfyui_invalid_graph_is_a_backend_error(comfyui, comfyui_server):
    comfyui_server.reject_next = 1
    with pytest.raises(BackendError, match="400"):
        comfyui.submit(REQUEST)


def test_comfyui_cancel_removes_the_prompt_from_the_queue(comfyui, comfyui_server):
    comfyui_server.queue_polls = 100
    job_id = comfyui.submit(REQUEST)
    comfyui.cancel(job_id)
    assert comfyui_server.deleted == [job_id]


def test_unreachable_backend_is_transient(settings, refused_url):
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0
    backend = ComfyUIBackend(base_url=refused_url, checkpoint="x")
    with pytest.raises(TransientBackendError):
        backend.poll("p", REQUEST)


def test_flux_samples_near_one_megapixel_then_scales_to_the_print_size():
    w, h = sample_size(4500, 5400)
    assert w % 16 == 0 and h % 16 == 0 and 0.8e6 < w * h < 1.2e6
    assert abs(w / h - 4500 / 5400) < 0.02


# --- RunPod --------------------------------------------------------------------------------------

def test_runpod_run_status_completed_with_base64_images(runpod, runpod_server):
    runpod_server.queue_polls = 2
    job_id = runpod.submit(REQUEST)
    assert runpod.poll(job_id, REQUEST).state == JobState.PENDING
    result = poll_until_done(runpod, job_id)
    assert result.state == JobState.COMPLETED and size_of(result.images[0]) == (600, 720)
    method, path, headers = runpod_server.requests[0]
    assert (method, path) == ("POST", f"/v2/{ENDPOINT_ID}/run")
    assert headers["Authorization"] == f"Bearer {API_KEY}" and headers["X-Request-ID"] == "req-123"
    workflow = runpod_server.jobs[job_id]["workflow"]
    assert {node["class_type"] for node in workflow.values()} >= {"CheckpointLoaderSimple", "KSampler", "SaveImage"}


def test_runpod_images_by_url_are_downloaded(runpod, runpod_server):
    runpod_server.output_mode = "url"
    result = poll_until_done(runpod, runpod.submit(REQUEST))
    assert result.state == JobState.COMPLETED and size_of(result.images[0]) == (600, 720)
    assert any(path.startswith("/files/") for path in runpod_server.paths("GET"))


@pytest.mark.parametrize(
    ("outcome", "message"),
    [("FAILED", "RunPod job failed: CUDA out of memory"), ("TIMED_OUT", "RunPod job timed out"),
     ("CANCELLED", "RunPod job was cancelled")],
)
def test_runpod_terminal_states_fail_the_job_with_their_message(runpod, runpod_server, outcome, message):
    runpod_server.outcomes = [outcome]
    result = poll_until_done(runpod, runpod.submit(REQUEST))
    assert result.state == JobState.FAILED and result.error == message


def test_runpod_429_is_retried_after_retry_after(runpod, runpod_server):
    runpod_server.rate_limited = 1
    job_id = runpod.submit(REQUEST)
    assert runpod_server.submissions == 1
    assert runpod_server.paths("POST") == [f"/v2/{ENDPOINT_ID}/run"] * 2  # the 429, then the accepted retry
    assert job_id in runpod_server.jobs


def test_runpod_submission_answered_with_a_5xx_is_not_sent_again(runpod, runpod_server):
    runpod_server.lost_answers = 1
    with pytest.raises(BackendError) as info:
        runpod.submit(REQUEST)
    assert not isinstance(info.value, TransientBackendError)
    assert runpod_server.submissions == 1
    assert runpod_server.paths("POST") == [f"/v2/{ENDPOINT_ID}/run"]


def test_runpod_submission_whose_answer_times_out_is_not_sent_again(runpod, runpod_server, settings):
    settings.HTTP_TIMEOUT_SECONDS = 0.3
    runpod_server.submit_delay = 1.0
    with pytest.raises(BackendError, match="not sent again") as info:
        runpod.submit(REQUEST)
    assert not isinstance(info.value, TransientBackendError)
    assert runpod_server.submissions == 1


def test_runpod_submission_to_an_unreachable_endpoint_is_transient(settings, refused_url):
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0
    backend = RunPodBackend(base_url=f"{refused_url}/v2", endpoint_id=ENDPOINT_ID, api_key=API_KEY)
    with pytest.raises(TransientBackendError):
        backend.submit(REQUEST)


def test_runpod_wrong_key_is_refused(runpod_server):
    backend = RunPodBackend(base_url=runpod_server.api_url, endpoint_id=ENDPOINT_ID, api_key="nope")
    with pytest.raises(BackendError, match="401"):
        backend.submit(REQUEST)
    assert runpod_server.submissions == 0


def test_runpod_unknown_job_fails_and_cancel_is_sent(runpod, runpod_server):
    assert runpod.poll("job-missing", REQUEST).state == JobState.FAILED
    runpod_server.hold = True
    job_id = runpod.submit(REQUEST)
    runpod.cancel(job_id)
    assert runpod_server.cancelled == [job_id]
    assert poll_until_done(runpod, job_id).error == "RunPod job was cancelled"


def test_get_backend_refuses_unconfigured_runpod(settings):
    settings.RUNPOD_ENDPOINT_ID = ""
    settings.RUNPOD_API_KEY = "x"
    with pytest.raises(BackendError, match="RUNPOD_ENDPOINT_ID"):
        get_backend("runpod")


@pytest.mark.parametrize(
    ("answer", "raises"),
    [(["not", "an", "object"], "JSON that is not an object"), ({"ID": "oops"}, "history entry that is not an object"),
     ({"ID": {"outputs": [1], "status": "done"}}, None),
     ({"ID": {"outputs": {"9": {"images": ["x.png"]}, "8": "junk"}, "status": {"completed": True}}}, None)],
)
def test_comfyui_malformed_history_is_a_backend_error_or_a_failed_job(comfyui, comfyui_server, answer, raises,
                                                                      monkeypatch):
    job_id = comfyui.submit(REQUEST)
    body = {job_id: answer["ID"]} if isinstance(answer, dict) else answer
    # The stand-in (test code, not ours) answers this malformed history for the job.
    monkeypatch.setattr(comfyui_server, "history", lambda prompt_id: body)
    if raises:
        with pytest.raises(BackendError, match=raises):
            comfyui.poll(job_id, REQUEST)
    else:
        result = comfyui.poll(job_id, REQUEST)
        assert result.state == JobState.FAILED
        assert result.error == "ComfyUI finished the workflow without saving an image"


def test_runpod_status_that_is_not_an_object_is_a_backend_error(runpod, runpod_server, monkeypatch):
    job_id = runpod.submit(REQUEST)
    monkeypatch.setattr(runpod_server, "status", lambda job: ["IN_QUEUE"])
    with pytest.raises(BackendError, match="not an object"):
        runpod.poll(job_id, REQUEST)
