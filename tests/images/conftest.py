"""Fixtures shared by the generation tests: a RunPod stand-in the settings point at."""

import pytest

from tests.servers.runpod import API_KEY, ENDPOINT_ID, RunPodServer


@pytest.fixture
def runpod_server(settings):
    server = RunPodServer().start()
    settings.RUNPOD_API_URL = server.api_url
    settings.RUNPOD_API_KEY = API_KEY
    settings.RUNPOD_ENDPOINT_ID = ENDPOINT_ID
    yield server
    server.stop()
