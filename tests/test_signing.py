"""Case 12: Standard Webhooks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from vadmon.alerts.signing import (
    SecretError,
    WebhookVerificationError,
    decode_secret,
    generate_secret,
    sign,
    verify,
)

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"type":"vadmon.event.start","timestamp":"x","data":{}}'
NOW = 1_700_000_000


def test_signature_matches_the_standard_definition():
    headers = sign(SECRET, "msg_1", BODY, timestamp=NOW)
    mac = hmac.new(KEY, b"msg_1.1700000000." + BODY, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    assert verify(headers, BODY, [SECRET], now=NOW) == "msg_1"


@pytest.mark.parametrize(
    "field,value",
    [("webhook-id", "msg_2"), ("webhook-timestamp", str(NOW + 1))],
)
def test_tampered_id_or_timestamp_fails(field, value):
    headers = sign(SECRET, "msg_1", BODY, timestamp=NOW)
    headers[field] = value
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY, [SECRET], now=NOW)


def test_tampered_body_fails():
    headers = sign(SECRET, "msg_1", BODY, timestamp=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(headers, BODY.replace(b"start", b"end"), [SECRET], now=NOW)


def test_stale_and_future_timestamps_fail():
    headers = sign(SECRET, "msg_1", BODY, timestamp=NOW)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(headers, BODY, [SECRET], now=NOW + 301)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(headers, BODY, [SECRET], now=NOW - 301)
    assert verify(headers, BODY, [SECRET], now=NOW + 299) == "msg_1"


def test_rotated_secrets_verify():
    old, new = generate_secret(), generate_secret()
    both = sign([old, new], "msg_1", BODY, timestamp=NOW)
    assert len(both["webhook-signature"].split()) == 2
    assert verify(both, BODY, [new], now=NOW) == "msg_1"  # receiver already rotated
    assert verify(both, BODY, [old], now=NOW) == "msg_1"  # receiver not yet rotated
    only_old = sign(old, "msg_1", BODY, timestamp=NOW)
    assert verify(only_old, BODY, [new, old], now=NOW) == "msg_1"  # receiver accepts both
    with pytest.raises(WebhookVerificationError):
        verify(only_old, BODY, [new], now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": "m", "webhook-timestamp": str(NOW)},
        {"webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "-5", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "garbage"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1,@@@"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v2,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1,"},
        {"webhook-id": "", "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1,A" * 5000},
    ],
)
def test_malformed_headers_rejected_cleanly(headers):
    with pytest.raises(WebhookVerificationError):
        verify(headers, BODY, [SECRET], now=NOW)


def test_header_names_are_case_insensitive():
    headers = {k.title(): v for k, v in sign(SECRET, "msg_1", BODY, timestamp=NOW).items()}
    assert verify(headers, BODY, [SECRET], now=NOW) == "msg_1"


def test_short_or_malformed_secrets_refused():
    with pytest.raises(SecretError, match="23 bytes"):
        decode_secret("whsec_" + base64.b64encode(b"x" * 23).decode())
    assert len(decode_secret("whsec_" + base64.b64encode(b"x" * 24).decode())) == 24
    with pytest.raises(SecretError):
        decode_secret(base64.b64encode(KEY).decode())  # no prefix
    with pytest.raises(SecretError):
        decode_secret("whsec_not base64!")
    with pytest.raises(SecretError):
        sign("whsec_" + base64.b64encode(b"short").decode(), "m", BODY)
    with pytest.raises(SecretError) as info:
        decode_secret("whsec_" + base64.b64encode(b"topsecretvalue").decode())
    assert "topsecret" not in str(info.value) and "dG9wc2VjcmV0" not in str(info.value)
