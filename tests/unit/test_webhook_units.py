"""Webhook pieces without services: signing (checked by the standardwebhooks package), retries, SSRF, events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from chorus.errors import InvalidInput
from chorus.ssrf import check_webhook_url
from chorus.vocab import WebhookEvent
from chorus.webhooks.events import wanted, webhook_id
from chorus.webhooks.notify import Throttle
from chorus.webhooks.retry import backoff_s, next_delay_s, retry_after_s, retryable
from chorus.webhooks.signing import new_secret, signed_headers


def test_every_secret_of_a_rotation_verifies_and_others_do_not() -> None:
    old, new = new_secret(), new_secret()
    body = '{"type":"job.succeeded"}'
    headers = signed_headers([new, old], "msg_1", datetime.now(UTC), body)

    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (new, old):
        assert Webhook(secret).verify(body, headers) == {"type": "job.succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + " ", headers)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    assert [backoff_s(n, 1, 100, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [backoff_s(n, 1, 100, rand=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 4]
    assert backoff_s(20, 1, 100, rand=lambda: 1.0) == 100


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    assert retry_after_s("7") == 7
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_s(soon) <= 30
    assert retry_after_s("soon") is None
    assert next_delay_s(1, "7", 1, 100) == 7
    assert next_delay_s(1, "9999", 1, 100) == 100
    assert next_delay_s(3, None, 1, 100, rand=lambda: 1.0) == 4


@pytest.mark.parametrize(("status", "again"), [(None, True), (429, True), (500, True), (503, True), (400, False)])
def test_only_timeouts_429_and_5xx_are_retried(status: int | None, again: bool) -> None:
    assert retryable(status) is again


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.5/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_webhooks_to_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_webhook_url(url, allow_private=False)
    assert refused.value.code == "webhook_forbidden_address"
    check_webhook_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.10.1/hook",
        "http://[fd00:ec2::254]/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://100.100.100.200/latest/meta-data",
        "http://0.0.0.0/hook",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_even_when_private_ones_are_allowed(url: str) -> None:
    for allow_private, networks in ((False, ()), (True, ()), (True, ["0.0.0.0/0", "::/0"])):
        with pytest.raises(InvalidInput) as refused:
            check_webhook_url(url, allow_private=allow_private, allowed_networks=networks)
        assert refused.value.code == "webhook_forbidden_address"


def test_a_public_address_is_allowed() -> None:
    check_webhook_url("https://93.184.216.34/hook", allow_private=False)


def test_terminal_events_always_go_out_others_when_chosen() -> None:
    job = {"webhook": "https://example.com/h", "webhook_events": ["job.started"]}
    assert (
        wanted(job, WebhookEvent.started)
        and wanted(job, WebhookEvent.failed)
        and not wanted(job, WebhookEvent.progress)
    )
    assert not wanted({"webhook": None, "webhook_events": ["job.started"]}, WebhookEvent.succeeded)
    jid = uuid.uuid4()
    assert webhook_id(jid, "job.progress", 40) != webhook_id(jid, "job.progress", 60)
    assert webhook_id(jid, "job.succeeded") == webhook_id(jid, "job.succeeded")


def test_progress_throttle_passes_once_per_interval_per_job() -> None:
    now = [0.0]
    throttle = Throttle(2.0, clock=lambda: now[0])
    a, b = uuid.uuid4(), uuid.uuid4()
    assert throttle.due([a, b]) == [a, b]
    throttle.passed(a)
    now[0] = 1.9
    assert throttle.due([a, b]) == [b]
    now[0] = 2.0
    assert throttle.due([a]) == [a]
    throttle.forget(a)
    assert throttle.due([a]) == [a]
