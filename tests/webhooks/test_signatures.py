"""Signatures as receivers check them: the `standardwebhooks` and `svix` libraries, and a plain HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook

from core.actors import Actor, Via
from tests.webhooks.conftest import deliver_pass
from webhooks import services, signing
from webhooks.models import EventType, WebhookSubscription

pytestmark = pytest.mark.django_db


def _deliver_one(receiver, path: str = "/ok"):
    with transaction.atomic():
        services.event_record(event_type=EventType.IMAGE_APPROVED, data={"image_id": "img_sig"})
    deliver_pass()
    return receiver.at(path)[-1]


def test_the_generated_secret_has_the_whsec_form(subscribe, receiver):
    _, secret = subscribe(receiver.url_for("/ok"))
    assert secret.startswith("whsec_")
    assert len(signing._key(secret)) == 32


def test_standardwebhooks_svix_and_plain_hmac_all_verify_a_delivery(subscribe, receiver):
    _, secret = subscribe(receiver.url_for("/ok"))
    got = _deliver_one(receiver)
    assert StandardWebhook(secret).verify(got.body, got.headers)["data"]["image_id"] == "img_sig"
    SvixWebhook(secret).verify(got.body, got.headers)
    digest = hmac.new(secret.encode("utf-8"), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.header("X-Webhook-Signature"), f"sha256={digest}")
    # The signed bytes are exactly the bytes sent: one changed byte fails every check.
    tampered = got.body.replace(b"img_sig", b"img_siG")
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(tampered, got.headers)
    assert hmac.new(secret.encode(), tampered, hashlib.sha256).hexdigest() != digest


def test_the_signed_content_is_id_timestamp_and_body():
    secret = signing.secret_new()
    body = b'{"a":1}'
    header = signing.signature_standard(secrets_=[secret], msg_id="evt_1", timestamp=1700000000, body=body)
    expected = hmac.new(signing._key(secret), b"evt_1.1700000000." + body, hashlib.sha256).digest()
    assert header == "v1," + base64.b64encode(expected).decode()


def test_rotation_signs_with_both_secrets_during_the_grace_period(subscribe, receiver, client_user):
    subscription, old = subscribe(receiver.url_for("/ok"))
    _, new = services.subscription_rotate_secret(subscription_id=subscription.id, actor=Actor(client_user, Via.API))
    assert new != old and new.startswith("whsec_")
    got = _deliver_one(receiver)
    assert len(got.header("webhook-signature").split(" ")) == 2
    StandardWebhook(old).verify(got.body, got.headers)
    StandardWebhook(new).verify(got.body, got.headers)
    # X-Webhook-Signature uses the newest secret.
    assert got.header("X-Webhook-Signature") == signing.signature_hex(secret=new, body=got.body)

    WebhookSubscription.objects.filter(id=subscription.id).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    got = _deliver_one(receiver)
    assert len(got.header("webhook-signature").split(" ")) == 1
    StandardWebhook(new).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(old).verify(got.body, got.headers)
