"""SIGTERM stops a real `manage.py db_worker` within its grace time, whenever it arrives."""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pytest
from django_tasks_db.models import DBTaskResult

from core.actors import Actor, Via
from images.generation import generation_create
from images.validation import GenerateInputSerializer
from tests.servers import WorkerProcess
from tests.servers.runpod import API_KEY, ENDPOINT_ID, RunPodServer

GRACE = 3.0
# Past the grace time the watchdog ends the process; this leaves room for a loaded machine.
EXIT_BOUND = GRACE + 12.0

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def runpod(settings):
    server = RunPodServer().start()
    settings.RUNPOD_API_URL, settings.RUNPOD_API_KEY, settings.RUNPOD_ENDPOINT_ID = server.api_url, API_KEY, ENDPOINT_ID
    yield server
    server.stop()


def generation(prompt: str):
    serializer = GenerateInputSerializer(
        data={"prompt": prompt, "width": 512, "height": 512, "backend": "runpod", "allow_duplicate": True}
    )
    serializer.is_valid(raise_exception=True)
    return generation_create(data=serializer.validated_data, actor=Actor(None, Via.API))


def worker(runpod: RunPodServer, tmp_path, name: str) -> WorkerProcess:
    return WorkerProcess(data_dir=tmp_path, log=tmp_path / f"{name}.log", env={
        "GENERATION_BACKEND": "runpod",
        "RUNPOD_API_URL": runpod.api_url,
        "RUNPOD_API_KEY": API_KEY,
        "RUNPOD_ENDPOINT_ID": ENDPOINT_ID,
        "HTTP_RETRY_BACKOFF_SECONDS": "0",
        "WORKER_STOP_GRACE_SECONDS": str(GRACE),
    })


def wait_exit(process: WorkerProcess, what: str) -> int:
    try:
        return process.wait(timeout=EXIT_BOUND)
    except subprocess.TimeoutExpired:
        log = process.output()[-4000:]
        raise AssertionError(f"{what}: still running {EXIT_BOUND:g} s after SIGTERM\n{log}") from None


def test_sigterm_at_random_moments_of_start_up_and_work_always_stops_the_worker(runpod, tmp_path):
    runpod.hold = True  # jobs stay IN_PROGRESS: the worker is polling mid-task whenever it has started one
    for n in range(3):
        generation(f"retro sunset cat {n}")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for trial in range(8):
        process = worker(runpod, tmp_path, f"trial{trial}").start()
        # Start-up (Django, the first heartbeat, the companions) takes a second or two; work follows.
        time.sleep(rng.uniform(0.0, 3.0))
        for _ in range(rng.choice((1, 1, 3))):
            process.signal(signal.SIGTERM)
            time.sleep(rng.uniform(0.0, 0.05))
        try:
            wait_exit(process, f"trial {trial} (seed {seed})")
        finally:
            process.stop()
        # Whatever it was doing, no task is left claimed by a worker that is gone.
        assert not DBTaskResult.objects.running().exists(), (seed, trial, process.output()[-3000:])


def test_a_task_stuck_in_a_call_is_handed_back_when_the_grace_time_is_over(runpod, tmp_path):
    runpod.submit_delay = 60  # the submission hangs well past the grace time (the client timeout is 30 s)
    generation("retro sunset cat stuck")
    process = worker(runpod, tmp_path, "stuck").start()
    try:
        deadline = time.monotonic() + 60
        while runpod.submissions == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runpod.submissions == 1, process.output()[-3000:]
        process.signal(signal.SIGTERM)
        started = time.monotonic()
        code = wait_exit(process, "stuck task")
        assert time.monotonic() - started >= GRACE - 0.5  # it waited for the task first
    finally:
        process.stop()
    assert code != 0  # ended, not finished
    task = DBTaskResult.objects.get()
    assert task.status == "READY", process.output()[-3000:]
    assert "did not stop within" in process.output()
