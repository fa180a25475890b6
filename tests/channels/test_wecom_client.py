"""The WeCom API client against a local fake WeCom server: tokens, expiry, errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from siyu.channels.wecom.client import TokenCache, WeComApiError, WeComClient
from tests.channels.fakes import FakeWeCom, serve

CORP = "wwcorp0001"
SECRET = "corp-secret-value-9f8e7d"


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with serve(FakeWeCom(CORP, {SECRET})) as fake:
        yield fake  # type: ignore[misc]


def client(fake: FakeWeCom, cache: TokenCache, **kw: object) -> WeComClient:
    return WeComClient(api_base=fake.url, corp_id=CORP, secret=SECRET, cache=cache,
                       **kw)  # type: ignore[arg-type]


def test_token_is_fetched_once_and_reused(wecom: FakeWeCom) -> None:
    cache = TokenCache()
    with client(wecom, cache) as c:
        c.send_app_text(agent_id="1000002", touser="zhangsan", content="您好")
        c.send_app_text(agent_id="1000002", touser="lisi", content="在的")
    assert len(wecom.calls("/cgi-bin/gettoken")) == 1
    sends = wecom.calls("/cgi-bin/message/send")
    assert [s.query["access_token"] for s in sends] == ["TOKEN-1", "TOKEN-1"]
    assert sends[0].body == {"touser": "zhangsan", "msgtype": "text", "agentid": 1000002,
                             "text": {"content": "您好"}, "safe": 0}


def test_expired_token_is_refreshed_and_the_call_retried_once(wecom: FakeWeCom) -> None:
    cache = TokenCache()
    with client(wecom, cache) as c:
        c.send_app_text(agent_id="1", touser="u1", content="a")
        wecom.expired.add("TOKEN-1")
        data = c.send_app_text(agent_id="1", touser="u1", content="b")
    assert data["errcode"] == 0
    assert [r.path for r in wecom.requests] == [
        "/cgi-bin/gettoken", "/cgi-bin/message/send", "/cgi-bin/message/send",
        "/cgi-bin/gettoken", "/cgi-bin/message/send"]
    assert wecom.requests[-1].query["access_token"] == "TOKEN-2"
    assert cache.get(TokenCache.key(wecom.url, CORP, SECRET)) == "TOKEN-2"


def test_token_expiry_twice_in_a_row_is_an_error_not_a_loop(wecom: FakeWeCom) -> None:
    wecom.then("/cgi-bin/message/send", {"json": {"errcode": 42001, "errmsg": "expired"}},
               {"json": {"errcode": 42001, "errmsg": "expired"}})
    with client(wecom, TokenCache()) as c, pytest.raises(WeComApiError) as err:
        c.send_app_text(agent_id="1", touser="u1", content="a")
    assert err.value.errcode == 42001
    assert len(wecom.calls("/cgi-bin/message/send")) == 2
    assert len(wecom.calls("/cgi-bin/gettoken")) == 2


def test_cached_token_expires_by_clock(wecom: FakeWeCom) -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    with client(wecom, cache) as c:
        assert c.access_token() == "TOKEN-1"
        now[0] += 7200 - 301  # still outside the 5-minute safety margin
        assert c.access_token() == "TOKEN-1"
        now[0] += 1  # 5 minutes before WeCom's expiry: refreshed
        assert c.access_token() == "TOKEN-2"
        assert c.access_token() == "TOKEN-2"
    assert len(wecom.calls("/cgi-bin/gettoken")) == 2


@pytest.mark.parametrize(("answer", "retryable", "ambiguous"), [
    ({"json": {"errcode": -1, "errmsg": "system busy"}}, True, False),
    ({"json": {"errcode": 45009, "errmsg": "api freq out of limit"}}, True, False),
    ({"status": 502, "json": {}}, True, False),
    ({"json": {"errcode": 81013, "errmsg": "user & party & tag all invalid"}}, False, False),
    ({"status": 403, "json": {}}, False, False),
])
def test_errors_are_classified(wecom: FakeWeCom, answer: dict[str, object], retryable: bool,
                               ambiguous: bool) -> None:
    wecom.then("/cgi-bin/message/send", answer)
    with client(wecom, TokenCache()) as c, pytest.raises(WeComApiError) as err:
        c.send_app_text(agent_id="1", touser="u1", content="a")
    assert (err.value.retryable, err.value.ambiguous) == (retryable, ambiguous)


def test_read_timeout_is_ambiguous(wecom: FakeWeCom) -> None:
    wecom.then("/cgi-bin/message/send", {"sleep": 0.5, "json": {"errcode": 0}})
    http = httpx.Client(timeout=0.2)
    with client(wecom, TokenCache(), http=http) as c, pytest.raises(WeComApiError) as err:
        c.send_app_text(agent_id="1", touser="u1", content="a")
    http.close()
    assert err.value.retryable and err.value.ambiguous


def test_unreachable_is_retryable_and_not_ambiguous() -> None:
    c = WeComClient(api_base="http://127.0.0.1:9", corp_id=CORP, secret=SECRET,
                    cache=TokenCache())
    with pytest.raises(WeComApiError) as err:
        c.access_token()
    assert err.value.retryable and not err.value.ambiguous


def test_wrong_secret_is_permanent(wecom: FakeWeCom) -> None:
    c = WeComClient(api_base=wecom.url, corp_id=CORP, secret="wrong", cache=TokenCache())
    with pytest.raises(WeComApiError) as err:
        c.access_token()
    assert err.value.errcode == 40001 and not err.value.retryable


def test_invalid_user_reported_by_wecom_is_an_error(wecom: FakeWeCom) -> None:
    wecom.then("/cgi-bin/message/send",
               {"json": {"errcode": 0, "errmsg": "ok", "invaliduser": "ghost"}})
    with client(wecom, TokenCache()) as c, pytest.raises(WeComApiError) as err:
        c.send_app_text(agent_id="1", touser="ghost", content="a")
    assert "ghost" in err.value.message and not err.value.retryable


def test_kf_send_and_duplicate_check_fields(wecom: FakeWeCom) -> None:
    with client(wecom, TokenCache()) as c:
        c.send_kf_text(open_kfid="wkAbc", touser="wmExt1", content="您好", msgid="siyu-7")
        c.send_app_text(agent_id="5", touser="u", content="x", duplicate_check=True)
    kf = wecom.calls("/cgi-bin/kf/send_msg")[0].body
    assert kf == {"touser": "wmExt1", "open_kfid": "wkAbc", "msgtype": "text",
                  "text": {"content": "您好"}, "msgid": "siyu-7"}
    app = wecom.calls("/cgi-bin/message/send")[0].body
    assert app["enable_duplicate_check"] == 1 and app["duplicate_check_interval"] == 14400


def test_secret_and_token_never_logged(wecom: FakeWeCom, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    wecom.then("/cgi-bin/message/send", {"json": {"errcode": 81013, "errmsg": "invalid"}})
    with caplog.at_level(logging.DEBUG), client(wecom, TokenCache()) as c:
        c.access_token()
        with pytest.raises(WeComApiError) as err:
            c.send_app_text(agent_id="1", touser="u1", content="a")
    text = caplog.text + str(err.value.to_dict())
    assert "HTTP Request" in caplog.text  # httpx did log the requests ...
    assert SECRET not in text and "TOKEN-1" not in text  # ... with the secrets blanked
