"""WeCom callback protocol against the official documentation vector, plus refusal cases."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import pytest

from siyu.channels.wecom.crypto import (
    WeComCrypto,
    WeComCryptoError,
    WeComCryptoReason,
    parse_xml,
)
from siyu.channels.wecom.messages import (
    EVENT_CHANGE_EXTERNAL_CONTACT,
    build_text_reply,
    parse_message,
    reply_text,
)
from siyu.errors import SiyuError
from tests.datasets import wecom_vector


@pytest.fixture(scope="module")
def vector() -> dict[str, Any]:
    return wecom_vector()


def make(vector: dict[str, Any], **kwargs: Any) -> WeComCrypto:
    return WeComCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_id"], **kwargs)


def encrypt_of(body: str) -> str:
    node = parse_xml(body).find("Encrypt")
    assert node is not None and node.text
    return node.text


def change_one_char(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


# -- official vector ------------------------------------------------------------------------


def test_verify_url_official_vector(vector: dict[str, Any]) -> None:
    v = vector["verify_url"]
    result = make(vector).verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert result == v["expected_plaintext"] == "1616140317555161061"


def test_decrypt_message_official_vector(vector: dict[str, Any]) -> None:
    m = vector["message"]
    plain = make(vector).decrypt_message(m["body"], m["msg_signature"], m["timestamp"], m["nonce"])
    assert plain == m["expected_plaintext_xml"]


def test_decrypt_message_accepts_bytes(vector: dict[str, Any]) -> None:
    m = vector["message"]
    plain = make(vector).decrypt_message(
        m["body"].encode("utf-8"), m["msg_signature"], m["timestamp"], m["nonce"]
    )
    assert plain == m["expected_plaintext_xml"]


def test_decrypted_message_parses(vector: dict[str, Any]) -> None:
    m = vector["message"]
    plain = make(vector).decrypt_message(m["body"], m["msg_signature"], m["timestamp"], m["nonce"])
    msg = parse_message(plain)
    assert msg.from_user == "mycreate"
    assert msg.to_user == vector["corp_id"]
    assert msg.content == "hello"
    assert msg.msg_id == "4561255354251345929"
    assert msg.msg_type == "text"
    assert msg.create_time == 1409659813
    assert msg.agent_id == "218"
    assert msg.event is None and msg.external_userid is None and not msg.is_event
    assert msg.raw["MsgId"] == "4561255354251345929"


# -- refusals -------------------------------------------------------------------------------


def test_signature_with_one_char_changed_is_refused(vector: dict[str, Any]) -> None:
    crypto = make(vector)
    v = vector["verify_url"]
    with pytest.raises(WeComCryptoError) as info:
        crypto.verify_url(
            change_one_char(v["msg_signature"]), v["timestamp"], v["nonce"], v["echostr"]
        )
    assert info.value.reason is WeComCryptoReason.BAD_SIGNATURE
    m = vector["message"]
    with pytest.raises(WeComCryptoError) as info:
        crypto.decrypt_message(
            m["body"], change_one_char(m["msg_signature"]), m["timestamp"], m["nonce"]
        )
    assert info.value.reason is WeComCryptoReason.BAD_SIGNATURE


@pytest.mark.parametrize("field", ["timestamp", "nonce"])
def test_signed_fields_cannot_be_changed(vector: dict[str, Any], field: str) -> None:
    m = dict(vector["message"])
    m[field] = m[field] + "1"
    with pytest.raises(WeComCryptoError) as info:
        make(vector).decrypt_message(m["body"], m["msg_signature"], m["timestamp"], m["nonce"])
    assert info.value.reason is WeComCryptoReason.BAD_SIGNATURE


def test_non_ascii_signature_is_refused_not_crashing(vector: dict[str, Any]) -> None:
    v = vector["verify_url"]
    with pytest.raises(WeComCryptoError) as info:
        make(vector).verify_url("签名", v["timestamp"], v["nonce"], v["echostr"])
    assert info.value.reason is WeComCryptoReason.BAD_SIGNATURE


def test_wrong_corp_id_is_refused(vector: dict[str, Any]) -> None:
    crypto = WeComCrypto(vector["token"], vector["encoding_aes_key"], "ww0000000000000000")
    v = vector["verify_url"]
    with pytest.raises(WeComCryptoError) as info:
        crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert info.value.reason is WeComCryptoReason.CORP_ID_MISMATCH
    m = vector["message"]
    with pytest.raises(WeComCryptoError) as info:
        crypto.decrypt_message(m["body"], m["msg_signature"], m["timestamp"], m["nonce"])
    assert info.value.reason is WeComCryptoReason.CORP_ID_MISMATCH


def test_wrong_token_is_refused(vector: dict[str, Any]) -> None:
    crypto = WeComCrypto("other", vector["encoding_aes_key"], vector["corp_id"])
    v = vector["verify_url"]
    with pytest.raises(WeComCryptoError) as info:
        crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert info.value.reason is WeComCryptoReason.BAD_SIGNATURE


def test_stale_timestamp(vector: dict[str, Any]) -> None:
    m = vector["message"]
    sent = int(m["timestamp"])
    args = (m["body"], m["msg_signature"], m["timestamp"], m["nonce"])

    late = make(vector, max_skew_seconds=300, clock=lambda: sent + 301.0)
    with pytest.raises(WeComCryptoError) as info:
        late.decrypt_message(*args)
    assert info.value.reason is WeComCryptoReason.STALE_TIMESTAMP

    early = make(vector, max_skew_seconds=300, clock=lambda: sent - 301.0)
    with pytest.raises(WeComCryptoError) as info:
        early.decrypt_message(*args)
    assert info.value.reason is WeComCryptoReason.STALE_TIMESTAMP

    # The real clock is years past the 2014 vector: refused with a skew, accepted without.
    with pytest.raises(WeComCryptoError) as info:
        make(vector, max_skew_seconds=300).decrypt_message(*args)
    assert info.value.reason is WeComCryptoReason.STALE_TIMESTAMP
    assert make(vector, max_skew_seconds=0).decrypt_message(*args) == m["expected_plaintext_xml"]

    fresh = make(vector, max_skew_seconds=300, clock=lambda: sent + 299.0)
    assert fresh.decrypt_message(*args) == m["expected_plaintext_xml"]


def test_stale_timestamp_on_verify_url(vector: dict[str, Any]) -> None:
    v = vector["verify_url"]
    crypto = make(vector, max_skew_seconds=60)
    with pytest.raises(WeComCryptoError) as info:
        crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert info.value.reason is WeComCryptoReason.STALE_TIMESTAMP


def test_non_numeric_timestamp_with_skew_check(vector: dict[str, Any]) -> None:
    crypto = make(vector, max_skew_seconds=60, clock=lambda: 1_700_000_000.0)
    encrypted = crypto._encrypt("x")
    sig = crypto.sign("soon", "n", encrypted)
    with pytest.raises(WeComCryptoError) as info:
        crypto.verify_url(sig, "soon", "n", encrypted)
    assert info.value.reason is WeComCryptoReason.INVALID_TIMESTAMP


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not xml at all",
        "<xml><Encrypt>",
        "<xml><ToUserName>a</ToUserName></xml>",
        "<xml><Encrypt></Encrypt></xml>",
        b"\xff\xfe<xml/>",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<xml><Encrypt>&b;</Encrypt></xml>",
        '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
    ],
)
def test_malformed_xml_is_refused(vector: dict[str, Any], body: str | bytes) -> None:
    m = vector["message"]
    with pytest.raises(WeComCryptoError) as info:
        make(vector).decrypt_message(body, m["msg_signature"], m["timestamp"], m["nonce"])
    assert info.value.reason is WeComCryptoReason.MALFORMED_XML


def _signed_body(
    crypto: WeComCrypto, encrypted: str, timestamp: str, nonce: str
) -> tuple[str, str]:
    body = (
        "<xml><ToUserName><![CDATA[x]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    return body, crypto.sign(timestamp, nonce, encrypted)


def _flip(encrypted: str, index: int, mask: int) -> str:
    data = bytearray(base64.b64decode(encrypted))
    data[index] ^= mask
    return base64.b64encode(bytes(data)).decode("ascii")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        # Flipping the last byte of the next-to-last block flips the final padding byte to an
        # impossible value (> 32): deterministic padding failure.
        (lambda e: _flip(e, -17, 0x80), WeComCryptoReason.DECRYPT_FAILED),
        (lambda e: e[:-4], WeComCryptoReason.DECRYPT_FAILED),  # not a whole number of blocks
        (lambda e: "!!" + e[2:], WeComCryptoReason.DECRYPT_FAILED),  # not base64
        (lambda e: e[:-2] + "=", WeComCryptoReason.DECRYPT_FAILED),  # bad base64 padding
        (lambda e: base64.b64encode(b"\x00" * 16).decode(), WeComCryptoReason.DECRYPT_FAILED),
        # Flipping byte 0 garbles block 0 (the random prefix) and flips the high byte of the
        # length field in block 1: the length then exceeds the plaintext.
        (lambda e: _flip(e, 0, 0x01), WeComCryptoReason.DECRYPT_FAILED),
    ],
)
def test_tampered_ciphertext_is_refused(
    vector: dict[str, Any], tamper: Any, reason: WeComCryptoReason
) -> None:
    """Even with a valid signature (e.g. a leaked token), broken ciphertext is refused cleanly."""
    crypto = make(vector)
    m = vector["message"]
    encrypted = tamper(encrypt_of(m["body"]))
    body, sig = _signed_body(crypto, encrypted, m["timestamp"], m["nonce"])
    with pytest.raises(WeComCryptoError) as info:
        crypto.decrypt_message(body, sig, m["timestamp"], m["nonce"])
    assert info.value.reason is reason


def test_tampered_ciphertext_never_raises_another_exception(vector: dict[str, Any]) -> None:
    crypto = make(vector)
    m = vector["message"]
    original = encrypt_of(m["body"])
    size = len(base64.b64decode(original))
    for index in range(size):
        encrypted = _flip(original, index, 0x5A)
        body, sig = _signed_body(crypto, encrypted, m["timestamp"], m["nonce"])
        with contextlib.suppress(WeComCryptoError):
            crypto.decrypt_message(body, sig, m["timestamp"], m["nonce"])


def test_tampered_ciphertext_with_original_signature_is_refused(vector: dict[str, Any]) -> None:
    m = vector["message"]
    encrypted = _flip(encrypt_of(m["body"]), 40, 0x01)
    body = m["body"].replace(encrypt_of(m["body"]), encrypted)
    with pytest.raises(WeComCryptoError) as info:
        make(vector).decrypt_message(body, m["msg_signature"], m["timestamp"], m["nonce"])
    assert info.value.reason is WeComCryptoReason.BAD_SIGNATURE


# -- encryption -----------------------------------------------------------------------------


def test_encrypt_decrypt_round_trip(vector: dict[str, Any]) -> None:
    crypto = make(vector)
    reply = build_text_reply(
        "mycreate", vector["corp_id"], "你好，我们收到了 ]]> <b>&</b>", 1409659813
    )
    out = crypto.encrypt_message(reply, "1372623149", "1409659813")
    root = parse_xml(out)
    assert root.findtext("TimeStamp") == "1409659813"
    assert root.findtext("Nonce") == "1372623149"
    encrypted = root.findtext("Encrypt")
    signature = root.findtext("MsgSignature")
    assert encrypted and signature
    assert signature == crypto.sign("1409659813", "1372623149", encrypted)
    plain = crypto.decrypt_message(out, signature, "1409659813", "1372623149")
    assert plain == reply
    parsed = parse_message(plain)
    assert parsed.content == "你好，我们收到了 ]]> <b>&</b>"
    assert parsed.to_user == "mycreate" and parsed.from_user == vector["corp_id"]
    # A fresh random prefix each time.
    assert encrypted != encrypt_of(crypto.encrypt_message(reply, "1372623149", "1409659813"))


def test_encrypt_defaults_timestamp_to_clock(vector: dict[str, Any]) -> None:
    crypto = make(vector, max_skew_seconds=30, clock=lambda: 1_700_000_000.7)
    out = crypto.encrypt_message("<xml/>", "abc")
    root = parse_xml(out)
    assert root.findtext("TimeStamp") == "1700000000"
    signature = root.findtext("MsgSignature") or ""
    assert crypto.decrypt_message(out, signature, "1700000000", "abc") == "<xml/>"


@pytest.mark.parametrize(("nonce", "timestamp"), [("", "1"), ("a]]>b", "1"), ("n", "1; x")])
def test_encrypt_rejects_unsafe_nonce_or_timestamp(
    vector: dict[str, Any], nonce: str, timestamp: str
) -> None:
    with pytest.raises(ValueError):
        make(vector).encrypt_message("<xml/>", nonce, timestamp)


# -- construction and hygiene ---------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["", "short", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C=", "x" * 44]
)
def test_key_length_is_validated(vector: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match="43 characters"):
        WeComCrypto(vector["token"], key, vector["corp_id"])


def test_key_alphabet_is_validated(vector: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="base64"):
        WeComCrypto(vector["token"], "!" * 43, vector["corp_id"])


def test_empty_token_or_corp_id_and_negative_skew_are_refused(vector: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WeComCrypto("", vector["encoding_aes_key"], vector["corp_id"])
    with pytest.raises(ValueError):
        WeComCrypto(vector["token"], vector["encoding_aes_key"], "")
    with pytest.raises(ValueError):
        make(vector, max_skew_seconds=-1)


def test_secrets_stay_out_of_repr_and_errors(vector: dict[str, Any]) -> None:
    crypto = make(vector)
    assert vector["token"] not in repr(crypto)
    assert vector["encoding_aes_key"] not in repr(crypto)
    with pytest.raises(ValueError) as bad_key:
        WeComCrypto(vector["token"], vector["encoding_aes_key"][:-1], vector["corp_id"])
    assert vector["encoding_aes_key"][:-1] not in str(bad_key.value)
    m = vector["message"]
    with pytest.raises(WeComCryptoError) as info:
        crypto.decrypt_message(m["body"], "0" * 40, m["timestamp"], m["nonce"])
    text = str(info.value) + repr(info.value.to_dict())
    assert vector["token"] not in text and vector["encoding_aes_key"] not in text


def test_error_type_and_reasons() -> None:
    err = WeComCryptoError("bad_signature")
    assert isinstance(err, SiyuError)
    assert err.reason == "bad_signature" and err.reason is WeComCryptoReason.BAD_SIGNATURE
    assert err.to_dict()["details"] == {"reason": "bad_signature"}
    assert len({r.value for r in WeComCryptoReason}) == len(WeComCryptoReason)


# -- messages -------------------------------------------------------------------------------


def test_parse_change_external_contact_event() -> None:
    xml = (
        "<xml><ToUserName><![CDATA[ww1234]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        "<CreateTime>1403610513</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID>"
        "<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>"
        "<State><![CDATA[teststate]]></State>"
        "<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>"
    )
    msg = parse_message(xml)
    assert msg.is_event and msg.event == EVENT_CHANGE_EXTERNAL_CONTACT
    assert msg.external_userid == "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"
    assert msg.change_type == "add_external_contact" and msg.user_id == "zhangsan"
    assert msg.content is None and msg.msg_id is None and msg.agent_id is None
    assert msg.raw["WelcomeCode"] == "WELCOMECODE"


def test_parse_nested_event_fields() -> None:
    xml = (
        "<xml><ToUserName>ww1</ToUserName><FromUserName>u1</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>scancode_push</Event>"
        "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>"
        "<AgentID>1</AgentID></xml>"
    )
    msg = parse_message(xml)
    assert msg.raw["ScanCodeInfo.ScanType"] == "qrcode"
    assert msg.agent_id == "1"


@pytest.mark.parametrize(
    "xml",
    [
        "<xml>",
        "<root><ToUserName>a</ToUserName></root>",
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType></xml>",
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName>"
        "<CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>",
    ],
)
def test_parse_message_malformed(xml: str) -> None:
    with pytest.raises(WeComCryptoError) as info:
        parse_message(xml)
    assert info.value.reason is WeComCryptoReason.MALFORMED_XML


def test_reply_text_swaps_users_and_escapes() -> None:
    inbound = parse_message(
        "<xml><ToUserName>ww1</ToUserName><FromUserName>u1</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>"
    )
    xml = reply_text(inbound, "a]]>b\x00c", create_time=42)
    parsed = parse_message(xml)
    assert parsed.to_user == "u1" and parsed.from_user == "ww1"
    assert parsed.content == "a]]>bc" and parsed.create_time == 42 and parsed.msg_type == "text"
