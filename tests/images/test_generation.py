"""Generations: create/cancel services, the worker task on every backend, resuming, the generate command."""

import io
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django_tasks_db.models import DBTaskResult
from prometheus_client import REGISTRY

from core.actors import Actor, Via
from core.errors import DuplicatePromptError, InvalidStateError
from images.generation import generation_cancel, generation_create
from images.intake import image_intake
from images.models import Generation, GenerationStatus, Image, ImageSource
from images.tasks import generation_run
from images.validation import GenerateInputSerializer
from tests.conftest import png_bytes
from tests.servers.comfyui import ComfyUIServer
from webhooks.models import WebhookEvent

ACTOR = Actor(None, Via.API)


def valid(**data):
    serializer = GenerateInputSerializer(data={"width": 512, "height": 640, **data})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def create(**data):
    return generation_create(data=valid(**data), actor=ACTOR)


def run(generation):
    generation_run.call(generation_id=generation.id)
    generation.refresh_from_db()
    return generation


def events(kind):
    return list(WebhookEvent.objects.filter(event_type=kind).order_by("created_at"))


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.GENERATION_POLL_SECONDS = 0.01
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0


@pytest.fixture
def comfyui_server(settings):
    server = ComfyUIServer().start()
    settings.COMFYUI_API_URL = server.url
    yield server
    server.stop()


# --- services ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_create_records_a_queued_generation_and_enqueues_its_task():
    generation = create(prompt="retro sunset cat", batch_size=3, backend="procedural", request_id="ignored")
    assert generation.status == GenerationStatus.QUEUED
    assert generation.params["batch_size"] == 3 and generation.params["seed_given"] is False
    assert 0 <= generation.params["seed"] <= 4294967295
    task = DBTaskResult.objects.get()
    assert task.status == "READY" and task.args_kwargs["kwargs"] == {"generation_id": generation.id}
    assert task.task_path == "images.tasks.generation_run"


@pytest.mark.django_db
def test_create_rolled_back_leaves_neither_generation_nor_task():
    with pytest.raises(RuntimeError), transaction.atomic():
        create(prompt="retro sunset cat")
        raise RuntimeError
    assert not Generation.objects.exists() and not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_same_prompt_hash_is_a_duplicate_unless_allowed():
    first = create(prompt="Retro sunset  cat")
    with pytest.raises(DuplicatePromptError) as refused:
        create(prompt="retro sunset cat\n")
    assert refused.value.details == {"existing_generation_id": first.id}
    assert create(prompt="retro sunset cat", allow_duplicate=True).id != first.id
    assert create(prompt="retro sunset cat", seed=5).prompt_hash != first.prompt_hash
    assert Generation.objects.count() == 3 and DBTaskResult.objects.count() == 3


@pytest.mark.django_db
def test_failed_generation_does_not_block_a_new_try():
    first = create(prompt="retro sunset cat")
    Generation.objects.filter(id=first.id).update(status=GenerationStatus.FAILED)
    assert create(prompt="retro sunset cat").id != first.id


@pytest.mark.django_db
def test_cancel_queued_then_refused_once_finished():
    generation = create(prompt="retro sunset cat")
    cancelled = generation_cancel(generation_id=generation.id, actor=ACTOR)
    assert cancelled.status == GenerationStatus.CANCELLED and cancelled.finished_at
    with pytest.raises(InvalidStateError):
        generation_cancel(generation_id=generation.id, actor=ACTOR)
    # The task, when it runs, leaves the cancelled generation alone.
    assert run(generation).status == GenerationStatus.CANCELLED
    assert not Image.objects.exists()


# --- the task ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_procedural_generation_completes_with_events_and_metrics():
    started, completed = metric("pod_generation_started_total"), metric("pod_generation_completed_total")
    generation = run(create(prompt="retro sunset cat", batch_size=3, backend="procedural"))
    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.success_count, generation.failed_count) == (3, 0)
    images = list(generation.images.order_by("batch_index"))
    assert [i.batch_index for i in images] == [0, 1, 2]
    assert all(i.status == "pending" and i.source == ImageSource.GENERATED and i.width == 512 for i in images)
    assert len({i.sha256 for i in images}) == 3  # one seed per slot: three different pictures
    assert [e.data["generation_id"] for e in events("generation.started")] == [generation.id]
    [done] = events("generation.completed")
    assert done.data["image_ids"] == [i.id for i in images]
    assert len(events("image.created")) == 3
    assert metric("pod_generation_started_total") == started + 1
    assert metric("pod_generation_completed_total") == completed + 1
    # A second run of the finished task changes nothing.
    assert run(generation).status == GenerationStatus.COMPLETED and Image.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_runpod_generation_stores_job_ids_and_passes_the_request_id(runpod_server):
    runpod_server.queue_polls = 3
    generation = generation_create(
        data=valid(prompt="retro sunset cat", batch_size=2, backend="runpod"), actor=ACTOR, request_id="req-9"
    )
    generation = run(generation)
    assert generation.status == GenerationStatus.COMPLETED and generation.success_count == 2
    assert {job["job_id"] for job in generation.external_jobs.values()} == set(runpod_server.jobs)
    assert all(job["state"] == "completed" for job in generation.external_jobs.values())
    assert runpod_server.submissions == 2
    assert all(headers.get("X-Request-ID") == "req-9" for _, _, headers in runpod_server.requests)


@pytest.mark.django_db(transaction=True)
def test_comfyui_generation_completes_every_slot(comfyui_server):
    comfyui_server.queue_polls = 2
    generation = run(create(prompt="retro sunset cat", batch_size=2, backend="comfyui"))
    assert generation.status == GenerationStatus.COMPLETED and generation.success_count == 2
    assert comfyui_server.submissions == 2


@pytest.mark.django_db(transaction=True)
def test_resumed_run_repolls_stored_jobs_and_skips_slots_with_images(runpod_server):
    generation = create(prompt="retro sunset cat", batch_size=3, backend="runpod")
    # State left by a run that died: slot 0 submitted (job stored), slot 1 done, slot 2 untouched.
    workflow = {"a": {"class_type": "ImageScale", "inputs": {"width": 512, "height": 640}},
                "b": {"class_type": "KSampler", "inputs": {"seed": 1}}}
    earlier_job = runpod_server.create_job(workflow)
    Generation.objects.filter(id=generation.id).update(
        status=GenerationStatus.RUNNING, started_at=generation.created_at,
        external_jobs={"0": {"job_id": earlier_job, "state": "submitted"}},
    )
    slot1 = image_intake(source=io.BytesIO(png_bytes(512, 640)), filename="s1.png",
                         source_kind=ImageSource.GENERATED, generation=generation, batch_index=1)
    generation = run(generation)
    assert generation.status == GenerationStatus.COMPLETED and generation.success_count == 3
    assert runpod_server.submissions == 2  # the earlier job and slot 2; slot 0 was not submitted again
    assert generation.external_jobs["0"]["job_id"] == earlier_job
    assert sorted(generation.images.values_list("batch_index", flat=True)) == [0, 1, 2]
    assert generation.images.get(batch_index=1).id == slot1.id
    assert events("generation.started") == []  # it had started before the crash


@pytest.mark.django_db(transaction=True)
def test_partial_failure_completes_with_failed_count(runpod_server):
    runpod_server.outcomes = ["COMPLETED", "FAILED"]
    generation = run(create(prompt="retro sunset cat", batch_size=2, backend="runpod"))
    assert generation.status == GenerationStatus.COMPLETED
    assert (generation.success_count, generation.failed_count) == (1, 1)
    assert "CUDA out of memory" in generation.error
    assert events("generation.completed")[0].data["failed_count"] == 1


@pytest.mark.django_db(transaction=True)
def test_all_slots_failing_fails_the_generation(runpod_server):
    failed = metric("pod_generation_failed_total", error_type="external")
    runpod_server.outcomes = ["TIMED_OUT"]
    generation = run(create(prompt="retro sunset cat", backend="runpod"))
    assert generation.status == GenerationStatus.FAILED and generation.error == "RunPod job timed out"
    assert [e.data["generation_id"] for e in events("generation.failed")] == [generation.id]
    assert metric("pod_generation_failed_total", error_type="external") == failed + 1


@pytest.mark.django_db(transaction=True)
def test_generation_timeout_cancels_remote_jobs(runpod_server, settings):
    settings.GENERATION_TIMEOUT_SECONDS = 0.3
    runpod_server.hold = True
    generation = run(create(prompt="retro sunset cat", backend="runpod"))
    assert generation.status == GenerationStatus.FAILED and generation.error == "Timed out"
    assert len(runpod_server.jobs) == 1 and runpod_server.cancelled == list(runpod_server.jobs)


@pytest.mark.django_db(transaction=True)
def test_cancel_while_running_stops_the_remote_jobs(runpod_server):
    runpod_server.hold = True
    generation = create(prompt="retro sunset cat", batch_size=2, backend="runpod")
    worker = threading.Thread(target=generation_run.call, kwargs={"generation_id": generation.id})
    worker.start()
    # Cancel only once both jobs are stored, so there is something remote to stop.
    deadline = time.monotonic() + 10
    while Generation.objects.get(id=generation.id).external_jobs.keys() != {"0", "1"}:
        assert time.monotonic() < deadline and worker.is_alive(), "both jobs were never submitted"
        time.sleep(0.02)
    generation_cancel(generation_id=generation.id, actor=ACTOR)
    worker.join(timeout=10)
    assert not worker.is_alive()
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
    assert len(runpod_server.jobs) == 2 and sorted(runpod_server.cancelled) == sorted(runpod_server.jobs)
    assert not Image.objects.exists() and events("generation.completed") == []


@pytest.mark.django_db(transaction=True)
def test_unusable_image_from_backend_fails_that_slot(runpod_server, monkeypatch):
    runpod_server.outcomes = ["COMPLETED"]
    generation = create(prompt="retro sunset cat", backend="runpod")
    # The stand-in returns bytes that are not an image for this job.
    original = runpod_server.create_job

    def broken(workflow):
        job_id = original(workflow)
        runpod_server.jobs[job_id]["png"] = b"not an image at all"
        return job_id

    monkeypatch.setattr(runpod_server, "create_job", broken)
    generation = run(generation)
    assert generation.status == GenerationStatus.FAILED and "Unusable image" in generation.error


# --- the generate command ------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "field"),
    [(["--width", "100"], "width"), (["--batch-size", "many"], "batch_size"), (["--backend", "dalle"], "backend"),
     (["--guidance", "99"], "guidance"), (["--seed", "-3"], "seed")],
)
def test_generate_command_bad_input_names_the_field_and_queues_nothing(args, field):
    with pytest.raises(CommandError) as refused:
        call_command("generate", "retro sunset cat", *args)
    assert f"{field}:" in str(refused.value)
    assert not Generation.objects.exists() and not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_generate_command_refuses_markup_prompt():
    with pytest.raises(CommandError, match="prompt: Markup"):
        call_command("generate", "<script>alert(1)</script>")
    assert not Generation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_generate_command_wait_runs_the_task_without_a_worker_and_prints_image_ids(capsys):
    call_command("generate", "retro sunset cat", "--batch-size", "2", "--width", "512", "--height", "512",
                 "--backend", "procedural", "--wait")
    lines = capsys.readouterr().out.split()
    generation = Generation.objects.get()
    assert generation.status == GenerationStatus.COMPLETED
    assert lines == [generation.id, *generation.images.order_by("batch_index").values_list("id", flat=True)]
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"


@pytest.mark.django_db
def test_generate_command_duplicate_names_the_option_that_allows_it():
    call_command("generate", "retro sunset cat", "--width", "512", "--height", "512")
    with pytest.raises(CommandError, match="add --allow-duplicate") as refused:
        call_command("generate", "retro sunset cat", "--width", "512", "--height", "512")
    assert Generation.objects.get().id in str(refused.value)
    call_command("generate", "retro sunset cat", "--width", "512", "--height", "512", "--allow-duplicate")
    assert Generation.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_generate_wait_resumes_a_task_left_running_by_a_killed_worker(capsys):
    """The worker died mid-task (its task still RUNNING) and no worker is left: --wait finishes it itself."""
    from images.management.commands.generate import Command

    generation = create(prompt="retro sunset cat", batch_size=2, backend="procedural")
    DBTaskResult.objects.update(status="RUNNING", worker_ids=["killed-worker"], started_at=generation.created_at)
    Command().wait(generation, timeout=15)
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.COMPLETED and generation.success_count == 2
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
