"""The crash-safe worker: real `manage.py db_worker` processes killed and restarted mid-generation."""

import signal
import time

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from core.actors import Actor, Via
from core.models import WorkerHeartbeat
from core.worker import tasks_requeue_stale, worker_alive
from images.generation import generation_create
from images.models import Generation, GenerationStatus
from images.validation import GenerateInputSerializer
from tests.servers import WorkerProcess
from tests.servers.runpod import API_KEY, ENDPOINT_ID


def wait_for(predicate, *, timeout=30.0, what="condition", workers=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    logs = "\n".join(worker.output()[-3000:] for worker in workers)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def create(**data):
    serializer = GenerateInputSerializer(data={"prompt": "retro sunset cat", "width": 512, "height": 512, **data})
    serializer.is_valid(raise_exception=True)
    return generation_create(data=serializer.validated_data, actor=Actor(None, Via.API))


@pytest.fixture
def workers(tmp_path, runpod_server):
    """Start real worker processes on the test database; all are killed at the end."""
    started: list[WorkerProcess] = []
    env = {"RUNPOD_API_URL": runpod_server.api_url, "RUNPOD_API_KEY": API_KEY,
           "RUNPOD_ENDPOINT_ID": ENDPOINT_ID, "HTTP_RETRY_BACKOFF_SECONDS": "0"}

    def start(**extra: str) -> WorkerProcess:
        worker = WorkerProcess(data_dir=tmp_path, env={**env, **extra}, log=tmp_path / f"worker{len(started)}.log")
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


def job_polled(server) -> bool:
    return any("/status/" in path for path in server.paths("GET"))


def every_job_polled(server) -> bool:
    polled = server.paths("GET")
    return all(any(path.endswith(f"/status/{job_id}") for path in polled) for job_id in list(server.jobs))


@pytest.mark.django_db
def test_running_tasks_of_silent_workers_are_requeued():
    tasks = [DBTaskResult.objects.get(args_kwargs__kwargs__generation_id=create(seed=n).id) for n in range(4)]
    WorkerHeartbeat.objects.create(worker_id="alive", last_seen=timezone.now())
    WorkerHeartbeat.objects.create(worker_id="silent", last_seen=timezone.now() - timezone.timedelta(minutes=5))
    for task, worker_ids in zip(tasks, [["alive"], ["silent"], ["gone"], ["silent", "alive"]], strict=True):
        DBTaskResult.objects.filter(id=task.id).update(status="RUNNING", worker_ids=worker_ids)
    requeued = tasks_requeue_stale(stale_seconds=60)
    assert sorted(requeued) == sorted(str(t.id) for t in tasks[1:3])
    statuses = [DBTaskResult.objects.get(id=t.id).status for t in tasks]
    assert statuses == ["RUNNING", "READY", "READY", "RUNNING"]


@pytest.mark.django_db
def test_a_worker_is_alive_only_with_a_heartbeat_fresher_than_the_stale_limit(settings):
    settings.WORKER_STALE_SECONDS = 60
    assert worker_alive() is False
    WorkerHeartbeat.objects.create(worker_id="silent", last_seen=timezone.now() - timezone.timedelta(minutes=5))
    assert worker_alive() is False
    WorkerHeartbeat.objects.create(worker_id="alive", last_seen=timezone.now())
    assert worker_alive() is True


@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_is_replaced_and_the_generation_resumes_without_a_second_submission(
    runpod_server, workers
):
    runpod_server.hold = True  # jobs stay IN_PROGRESS until released
    generation = create(batch_size=2, backend="runpod")
    first = workers()
    # Each slot's job is polled only after its id was committed, so once both were polled both are stored.
    wait_for(lambda: runpod_server.submissions == 2 and every_job_polled(runpod_server),
             what="jobs submitted and polled", workers=[first])
    stored = Generation.objects.get(id=generation.id).external_jobs
    assert {job["job_id"] for job in stored.values()} == set(runpod_server.jobs)  # stored before polling

    first.signal(signal.SIGKILL)
    first.wait()
    task = DBTaskResult.objects.get(args_kwargs__kwargs__generation_id=generation.id)
    assert task.status == "RUNNING"  # what the dead worker left behind
    runpod_server.hold = False

    second = workers(WORKER_STALE_SECONDS="1")
    # The worker marks its task result only after the task returned, i.e. after the generation completed.
    wait_for(lambda: DBTaskResult.objects.get(id=task.id).status == "SUCCESSFUL",
             what="task finished by the second worker", workers=[first, second])
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.COMPLETED
    assert runpod_server.submissions == 2  # one /run per slot, none repeated after the crash
    assert sorted(generation.images.values_list("batch_index", flat=True)) == [0, 1]
    assert generation.success_count == 2
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL" and len(task.worker_ids) == 2


@pytest.mark.django_db(transaction=True)
def test_sigterm_leaves_the_task_resumable(runpod_server, workers):
    runpod_server.hold = True
    generation = create(backend="runpod")
    first = workers()
    wait_for(lambda: runpod_server.submissions == 1 and job_polled(runpod_server), what="job polled", workers=[first])
    wait_for(lambda: WorkerHeartbeat.objects.exists(), what="a heartbeat", workers=[first])

    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    task = DBTaskResult.objects.get(args_kwargs__kwargs__generation_id=generation.id)
    assert task.status == "READY", first.output()
    assert Generation.objects.get(id=generation.id).status == GenerationStatus.RUNNING
    assert not WorkerHeartbeat.objects.exists()  # a clean exit removes its heartbeat

    runpod_server.hold = False
    second = workers()
    wait_for(lambda: Generation.objects.get(id=generation.id).status == GenerationStatus.COMPLETED,
             what="generation completed after restart", workers=[second])
    assert runpod_server.submissions == 1
