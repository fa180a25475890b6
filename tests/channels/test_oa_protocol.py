"""The official account's callback protocol against the platform's documented example and
against an encryption written independently of siyu (see tests/channels/oa_helpers.py)."""

from __future__ import annotations

import pytest

from siyu.channels.oa.protocol import OaCallbackError, OaProtocol, OaReason, parse_inbound
from tests.channels.oa_helpers import (
    DOC,
    doc_body,
    independent_decrypt,
    independent_encrypt,
    text_xml,
)


def doc_protocol(**kw: object) -> OaProtocol:
    return OaProtocol(DOC["token"], DOC["appid"], DOC["encoding_aes_key"], **kw)  # type: ignore[arg-type]


def test_documented_server_verification_answers_echostr() -> None:
    v = DOC["verify"]
    assert doc_protocol().verify_url(v["signature"], v["timestamp"], v["nonce"],
                                     v["echostr"]) == "4375120948345356249"


def test_documented_plaintext_signature_verifies() -> None:
    p = DOC["plain"]
    assert doc_protocol().sign(p["timestamp"], p["nonce"]) == p["signature"]
    OaProtocol(DOC["token"], DOC["appid"]).check_signature(p["signature"], p["timestamp"],
                                                           p["nonce"])


def test_documented_safe_mode_message_verifies_and_decrypts() -> None:
    inbound = doc_protocol().open(doc_body(), DOC["safe"])
    assert inbound.openid == "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
    assert (inbound.to_user, inbound.create_time, inbound.event) == (
        "gh_97417a04a28d", 1714112445, "debug_demo")
    assert inbound.fields["debug_str"] == "hello world"
    # The URL's plain ``signature`` is the documented one too.
    assert doc_protocol().sign(DOC["safe"]["timestamp"], DOC["safe"]["nonce"]) == \
        DOC["safe"]["signature"]


def test_documented_reply_encryption_is_reproduced_byte_for_byte() -> None:
    r = DOC["reply"]
    encrypted, signature = doc_protocol().encrypt(r["text"], r["nonce"], r["timestamp"],
                                                  random_prefix=r["random"].encode())
    assert (encrypted, signature) == (r["encrypt"], r["msg_signature"])


@pytest.mark.parametrize("field", ["msg_signature", "timestamp", "nonce"])
def test_changing_any_signed_parameter_is_refused_as_forged(field: str) -> None:
    params = dict(DOC["safe"])
    params[field] = params[field][:-1] + ("0" if params[field][-1] != "0" else "1")
    with pytest.raises(OaCallbackError) as err:
        doc_protocol().open(doc_body(), params)
    assert err.value.reason is OaReason.BAD_SIGNATURE and err.value.status_code == 403


def test_the_plain_signature_alone_does_not_open_a_safe_mode_callback() -> None:
    params = {k: v for k, v in DOC["safe"].items() if k != "msg_signature"}
    with pytest.raises(OaCallbackError) as err:
        doc_protocol().open(doc_body(), params)
    assert err.value.status_code == 403


def test_stale_timestamp_is_refused_when_skew_is_limited() -> None:
    with pytest.raises(OaCallbackError) as err:
        doc_protocol(max_skew_seconds=300).open(doc_body(), DOC["safe"])
    assert err.value.reason is OaReason.STALE_TIMESTAMP and err.value.status_code == 403
    v = DOC["verify"]
    with pytest.raises(OaCallbackError):
        doc_protocol(max_skew_seconds=300).verify_url(v["signature"], v["timestamp"],
                                                      v["nonce"], v["echostr"])


def test_a_payload_for_another_app_id_is_refused() -> None:
    body, params = independent_encrypt(text_xml("o1", "hi", "1"), token=DOC["token"],
                                       key=DOC["encoding_aes_key"], appid="wxsomeoneelse")
    with pytest.raises(OaCallbackError) as err:
        doc_protocol().open(body, params)
    assert err.value.reason is OaReason.APPID_MISMATCH and err.value.status_code == 403


def test_safe_mode_refuses_a_plaintext_callback_and_plaintext_mode_an_encrypted_one() -> None:
    p = DOC["plain"]
    with pytest.raises(OaCallbackError) as err:
        doc_protocol().open(text_xml("o1", "hi", "1").encode(), p)
    assert err.value.reason is OaReason.PLAINTEXT_REFUSED and err.value.status_code == 403
    with pytest.raises(OaCallbackError) as err:
        OaProtocol(DOC["token"], DOC["appid"]).open(doc_body(), DOC["safe"])
    assert err.value.reason is OaReason.ENCRYPTED_UNEXPECTED


def test_an_independently_encrypted_text_message_opens() -> None:
    xml = text_xml("oOpenid1", "  我的订单到哪了？ ", "24000000001", 1764650000, "uUnion1")
    body, params = independent_encrypt(xml, token=DOC["token"], key=DOC["encoding_aes_key"],
                                       appid=DOC["appid"])
    inbound = doc_protocol().open(body, params)
    assert (inbound.openid, inbound.msg_type, inbound.msg_id, inbound.unionid) == (
        "oOpenid1", "text", "24000000001", "uUnion1")
    assert inbound.fields["Content"] == "  我的订单到哪了？ "  # kept exactly as sent


def test_siyu_encryption_is_read_by_the_independent_decryption() -> None:
    encrypted, _signature = doc_protocol().encrypt("<xml>回复</xml>", "abc", "1764650000")
    assert independent_decrypt(encrypted, key=DOC["encoding_aes_key"]) == (
        "<xml>回复</xml>", DOC["appid"])


def test_malformed_bodies_are_400() -> None:
    for body in (b"<xml><Encrypt>", b"[1]", b"<xml><ToUserName>x</ToUserName></xml>"):
        with pytest.raises(OaCallbackError) as err:
            parse_inbound(body) if body.startswith(b"<xml><To") else doc_protocol().open(
                body, DOC["safe"])
        assert err.value.status_code == 400


def test_errors_carry_no_secret() -> None:
    params = dict(DOC["safe"], msg_signature="0" * 40)
    with pytest.raises(OaCallbackError) as err:
        doc_protocol().open(doc_body(), params)
    text = str(err.value.to_dict())
    assert DOC["encoding_aes_key"] not in text and "hello world" not in text
