"""The 新建渠道码 form on the console page 邀请与渠道码 (/referrals): administrators and
operators (``segments.write``) create a channel code; bad input comes back as a clear
Chinese message and writes nothing; analysts see the codes but no form and may not post;
a post without the page's CSRF token is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.models import User
from siyu.referrals.models import ReferralCode
from tests.console.conftest import Login, csrf_from

FORM = "/referrals/channel-codes"


def _codes(sessions: sessionmaker[Session]) -> list[tuple[str | None, str | None, str | None]]:
    with sessions() as s:
        return [tuple(r) for r in s.execute(select(
            ReferralCode.name, ReferralCode.channel, ReferralCode.state)
            .order_by(ReferralCode.id))]  # type: ignore[misc]


@pytest.mark.usefixtures("staff")
def test_an_operator_creates_a_channel_code_from_the_form(
        login: Login, sessions: sessionmaker[Session]) -> None:
    web = login("operator")
    page = web.get("/referrals")
    assert page.status_code == 200
    assert 'id="channel-code-form"' in page.text and "新建渠道码" in page.text
    assert "style=" not in page.text and "<script>" not in page.text
    assert "归因后 30 天内" in page.text and "邀请人得 100 积分" in page.text
    with sessions() as s:
        advisor = s.scalar(select(User.id).where(User.username == "agent"))
    assert f'<option value="{advisor}">agent 同学（agent）</option>' in page.text
    token = csrf_from(page.text)
    done = web.post(FORM, data={"csrf_token": token, "name": "顾问 1V1 活码",
                                "channel": "advisor", "advisor_user_id": str(advisor),
                                "state": "advisor-agent"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/referrals#channel"
    after = web.get("/referrals")
    assert "已创建渠道码「顾问 1V1 活码」" in after.text
    assert "企业微信渠道参数 advisor-agent" in after.text
    assert 'id="channel-codes"' in after.text and "agent 同学" in after.text
    assert _codes(sessions) == [("顾问 1V1 活码", "advisor", "advisor-agent")]


@pytest.mark.usefixtures("staff")
@pytest.mark.parametrize(("form", "message"), [
    ({"name": "  ", "channel": "store"}, "未创建渠道码：名称：请填写 1 到 100 个字符"),
    ({"name": "门店", "channel": "online"}, "未创建渠道码：渠道类型：请选择门店、活动或顾问"),
    ({"name": "门店", "channel": "store", "state": "静安 店"},
     "未创建渠道码：企业微信渠道参数：请填写 1 到 30 个英文字母、数字、_ 或 -"),
    ({"name": "顾问码", "channel": "advisor"}, "未创建渠道码：顾问渠道码要选择顾问"),
    ({"name": "门店", "channel": "store", "advisor_user_id": "abc"},
     "未创建渠道码：顾问：请从列表中选择"),
    ({"name": "门店", "channel": "store", "advisor_user_id": "999999"},
     "未创建渠道码：没有编号为 999999 的在职员工（顾问）"),
])
def test_bad_input_shows_a_clear_chinese_error_and_writes_nothing(
        login: Login, sessions: sessionmaker[Session], form: dict[str, str],
        message: str) -> None:
    web = login("admin")
    token = csrf_from(web.get("/referrals").text)
    answer = web.post(FORM, data={"csrf_token": token, **form})
    assert answer.status_code == 200
    assert f'<div class="flash flash-error" role="status">{message}</div>' in answer.text
    assert _codes(sessions) == []


@pytest.mark.usefixtures("staff")
def test_a_taken_state_is_refused_with_its_reason(login: Login,
                                                  sessions: sessionmaker[Session]) -> None:
    web = login("operator")
    token = csrf_from(web.get("/referrals").text)
    web.post(FORM, data={"csrf_token": token, "name": "春季", "channel": "campaign",
                         "state": "spring"})
    again = web.post(FORM, data={"csrf_token": token, "name": "春季二",
                                 "channel": "campaign", "state": "spring"})
    assert "企业微信渠道参数 spring 已被其他渠道码使用" in again.text
    assert [c[0] for c in _codes(sessions)] == ["春季"]


@pytest.mark.usefixtures("staff")
def test_analysts_see_no_form_and_may_not_post_and_csrf_is_checked(
        login: Login, sessions: sessionmaker[Session]) -> None:
    web = login("analyst")
    page = web.get("/referrals")
    assert page.status_code == 200 and 'id="channel-code-form"' not in page.text
    token = csrf_from(page.text)
    assert web.post(FORM, data={"csrf_token": token, "name": "门店", "channel": "store"},
                    follow_redirects=False).status_code == 403
    web.get("/logout")
    web = login("operator")
    assert web.post(FORM, data={"csrf_token": "forged", "name": "门店", "channel": "store"},
                    follow_redirects=False).status_code == 403
    assert _codes(sessions) == []
