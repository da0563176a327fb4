"""SIGTERM to `make serve` under load: accepted requests are answered, the publish in flight resumes afterwards."""

from __future__ import annotations

import io
import json
import signal
import socket
import threading
import time

import pytest
import requests
from PIL import Image

from tests.servers.printify import API_KEY, SHOP_ID, Fault, PrintifyStandIn
from tests.serving.conftest import Gateway
from tests.serving.test_serve_metrics import api_token, in_flight, scrape, wait_until
from tests.serving.test_slow_clients import read_response

TIMEOUT = 15.0
HELD = 6


def design_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2400, 2400), (30, 120, 200)).save(buffer, "PNG", dpi=(300, 300))
    return buffer.getvalue()


def approved_design(gateway: Gateway, auth: dict[str, str]) -> str:
    upload = requests.post(gateway.url + "/api/v1/images", headers=auth, timeout=60,
                           files={"file": ("design.png", design_png(), "image/png")}, data={"prompt": "a blue square"})
    assert upload.status_code == 201, upload.text
    image_id = upload.json()["id"]
    approve = requests.post(f"{gateway.url}/api/v1/images/{image_id}/approve", headers=auth, json={}, timeout=TIMEOUT)
    assert approve.status_code == 200, approve.text
    return image_id


def hoodie_template(gateway: Gateway, auth: dict[str, str]) -> str:
    answer = requests.post(gateway.url + "/api/v1/product-templates", headers=auth, timeout=TIMEOUT, json={
        "name": "Gildan 18500 hoodie", "platform": "printify", "blueprint_id": 77, "print_provider_id": 29,
        "variant_ids": [32918, 32919], "price_cents": 3499,
    })
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def held_request(gateway: Gateway, auth: dict[str, str]) -> tuple[socket.socket, bytes]:
    """A batch approval whose headers and first half of the body are sent: accepted, in flight."""
    body = json.dumps({"image_ids": ["img_does_not_exist"]}).encode()
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=TIMEOUT)
    sock.sendall(
        b"POST /api/v1/batch/approve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: {auth['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    return sock, body[len(body) // 2:]


@pytest.mark.django_db(transaction=True)
def test_sigterm_under_load_answers_what_was_accepted_and_the_publish_resumes_on_the_next_start(gateway, tmp_path):
    printify = PrintifyStandIn().start()
    arrived, release = threading.Event(), threading.Event()

    def hold_publish() -> None:
        arrived.set()
        release.wait(60)

    # The first publish call is held past the worker's grace time, then its connection drops.
    printify.inject("publish", Fault(hook=hold_publish, drop=True))
    env = {
        "PRINTIFY_API_URL": printify.url, "PRINTIFY_API_KEY": API_KEY, "PRINTIFY_SHOP_ID": str(SHOP_ID),
        "PRINTIFY_BACKOFF_SECONDS": "0.01", "PRINTIFY_TIMEOUT_SECONDS": "30", "PUBLIC_BASE_URL": "",
        "WEB_WORKERS": "2", "SERVER_GRACEFUL_TIMEOUT_SECONDS": "20", "WORKER_STOP_GRACE_SECONDS": "3",
    }
    data_dir = tmp_path / "data"
    try:
        running = gateway("serve", env=env, data_dir=data_dir, database=True)
        auth = {"Authorization": "Token " + api_token(running, "ops-admin", "admin")}
        image_id = approved_design(running, auth)
        template_id = hoodie_template(running, auth)
        publish = requests.post(f"{running.url}/api/v1/images/{image_id}/publish", headers=auth, timeout=TIMEOUT,
                                json={"template": template_id})
        assert publish.status_code == 202, publish.text
        product = publish.json()
        assert arrived.wait(60), "the worker never reached the publish step\n" + running.output()[-3000:]

        held = [held_request(running, auth) for _ in range(HELD)]
        wait_until(lambda: in_flight(scrape(running)) >= HELD + 1, "the held requests to be in flight")
        running.signal(signal.SIGTERM)
        time.sleep(1.0)  # the web workers have stopped accepting; the held requests are still open
        for sock, rest in held:
            try:
                sock.sendall(rest)
                status, headers, body = read_response(sock)
            finally:
                sock.close()
            assert status == 200, body
            assert json.loads(body)["counts"] == {"successful": 0, "failed": 1, "skipped": 0, "total": 1}
        assert running.wait(60) == 0, running.output()[-4000:]
        assert "Stopping" in running.output()
    finally:
        release.set()

    # The task was handed back to the queue: the next start resumes it, and nothing is made twice.
    again = gateway("serve", env=env, data_dir=data_dir, database=True)

    def published() -> bool:
        answer = requests.get(f"{again.url}/api/v1/products/{product['id']}", headers=auth, timeout=TIMEOUT)
        return answer.json()["status"] in {"published", "failed"}

    try:
        wait_until(published, "the resumed publish to finish", timeout=90)
        final = requests.get(f"{again.url}/api/v1/products/{product['id']}", headers=auth, timeout=TIMEOUT).json()
        assert final["status"] == "published", (final, again.output()[-3000:])
        assert printify.calls["create"] == 1 and printify.calls["publish"] == 2
        assert len(printify.products) == 1
    finally:
        printify.stop()
