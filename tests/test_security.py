"""bot.channels.signature: the X-Hub-Signature-256 check fails closed; the verify token compares safely."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from bot.channels.signature import sign, signature_valid, verify_token_valid

SECRET = "app-secret-0123456789abcdef"
BODY = b'{"object":"page","entry":[{"id":"200000000000002","time":1789000001000,"messaging":[]}]}'


def hmac_hex(secret: str, body: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def test_sign_gives_the_header_meta_sends() -> None:
    assert sign(SECRET, BODY) == "sha256=" + hmac_hex(SECRET, BODY)
    assert sign(SECRET, BODY) == sign(SECRET, BODY).lower()


def test_good_signature_is_accepted() -> None:
    assert signature_valid(SECRET, BODY, sign(SECRET, BODY))


def test_uppercase_hex_digits_are_the_same_digest() -> None:
    assert signature_valid(SECRET, BODY, "sha256=" + hmac_hex(SECRET, BODY).upper())


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(sign("another-app-secret", BODY), id="forged-with-other-secret"),
        pytest.param(sign(SECRET, BODY + b" "), id="signature-of-other-body"),
        pytest.param("sha256=" + "0" * 64, id="zeros"),
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("sha256=", id="prefix-only"),
        pytest.param(hmac_hex(SECRET, BODY), id="no-prefix"),
        pytest.param("SHA256=" + hmac_hex(SECRET, BODY), id="uppercase-prefix"),
        pytest.param("sha512=" + hmac_hex(SECRET, BODY), id="wrong-prefix"),
        pytest.param("sha1=" + hmac_hex(SECRET, BODY, "sha1"), id="sha1-only"),
        pytest.param(" sha256=" + hmac_hex(SECRET, BODY), id="leading-space"),
        pytest.param(sign(SECRET, BODY) + "\n", id="trailing-newline"),
        pytest.param(sign(SECRET, BODY)[:-1], id="truncated"),
        pytest.param(sign(SECRET, BODY) + "0", id="too-long"),
        pytest.param("sha256=" + "g" * 64, id="not-hex"),
        pytest.param("sha256=" + "é" * 64, id="non-ascii"),
        pytest.param("sha256=" + "٣" * 64, id="non-ascii-digits"),
    ],
)
def test_anything_but_a_correct_sha256_header_is_refused(header: str | None) -> None:
    assert not signature_valid(SECRET, BODY, header)


def test_empty_secret_fails_closed_even_with_a_matching_digest() -> None:
    header = "sha256=" + hmac_hex("", BODY)
    assert not signature_valid("", BODY, header)


def test_sign_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="empty secret"):
        sign("", BODY)


def test_signature_is_over_the_raw_bytes_not_the_decoded_json() -> None:
    # Meta signs its escaped-unicode JSON; the same document re-serialised as UTF-8 is other bytes.
    escaped = b'{"entry":[{"text":"caff\\u00e8 \\u00e4\\u00f6\\u00e5 \\ud83d\\udc4d"}],"object":"page"}'
    header = sign(SECRET, escaped)
    reserialised = json.dumps(json.loads(escaped), ensure_ascii=False).encode("utf-8")
    assert signature_valid(SECRET, escaped, header)
    assert not signature_valid(SECRET, reserialised, header)
    assert signature_valid(SECRET, reserialised, sign(SECRET, reserialised))


def test_non_ascii_secret_and_binary_bodies_work() -> None:
    secret, body = "segreto-è-🔑", bytes(range(256))
    assert sign(secret, body) == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert signature_valid(secret, body, sign(secret, body))
    assert signature_valid(secret, bytearray(body), sign(secret, body))


def test_a_body_that_is_not_bytes_is_refused() -> None:
    assert not signature_valid(SECRET, BODY.decode(), sign(SECRET, BODY))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expected", "given", "valid"),
    [
        ("verify-me", "verify-me", True),
        ("gettone-è", "gettone-è", True),
        ("verify-me", "verify-me ", False),
        ("verify-me", "VERIFY-ME", False),
        ("verify-me", "", False),
        ("verify-me", None, False),
        ("", "", False),
        ("", None, False),
        ("verify-me", "\udcff", False),  # a value decoded with surrogateescape does not crash
    ],
)
def test_verify_token(expected: str, given: str | None, valid: bool) -> None:
    assert verify_token_valid(expected, given) is valid
