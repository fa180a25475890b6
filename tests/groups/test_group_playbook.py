"""Group-level SOP: a playbook whose audience is a customer group is sent, on its schedule,
as one WeCom group mass-send task per group (add_msg_template, chat_type "group", the owner
as sender, the chat id), ``created`` until the owner confirms and ``sent`` once
get_groupmsg_send_result says so; once per occurrence; refused files name the place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.config import ChannelSettings
from siyu.channels.models import Delivery
from siyu.channels.wecom.client import TokenCache
from siyu.channels.wecom.mass import WeComGroupMassAdapter, refresh_results
from siyu.config import Settings
from siyu.groups import service as groups
from siyu.groups.models import CustomerGroup
from siyu.playbooks import service as playbooks
from siyu.playbooks import triggers
from siyu.playbooks.errors import InvalidPlaybook
from tests.channels.conftest import run_jobs
from tests.channels.fakes import FakeWeCom
from tests.groups.conftest import member, store_group

# 2026-03-02 07:30 in Shanghai
FIRES = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
BREAKFAST = "禾源良品·早餐打卡群"
PLAYBOOK = f"""\
name: 早餐打卡提醒
status: active
trigger: {{schedule: "30 7 * * *"}}
audience: {{group: {BREAKFAST}}}
steps:
  - send:
      channel: wecom_group_mass
      template: "早上好！{{{{ group.name }}}}今天的打卡开始啦，{{{{ group.members }}}} 位伙伴等你"
"""


@pytest.fixture
def group_adapters(adapters: dict[str, Any], wecom_settings: Settings,
                   channel_settings: ChannelSettings) -> Iterator[dict[str, Any]]:
    """The channel tests' adapters (pointed at the fake WeCom) plus the group mass send."""
    adapter = WeComGroupMassAdapter(wecom_settings, channel_settings, cache=TokenCache())
    adapters["wecom_group_mass"] = adapter
    yield adapters
    adapters.pop("wecom_group_mass", None)


def _groups(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        store_group(s, settings, "wrBreakfast", BREAKFAST, [
            member("advisor_chen", 1, FIRES - dt.timedelta(days=9)),
            member("wmFan01", 2, FIRES - dt.timedelta(days=9)),
            member("wmFan02", 2, FIRES - dt.timedelta(days=3))], owner="advisor_chen")
        store_group(s, settings, "wrMoms", "宝妈营养交流群", [
            member("advisor_li", 1, FIRES - dt.timedelta(days=9)),
            member("wmMom01", 2, FIRES - dt.timedelta(days=9))], owner="advisor_li")
        s.commit()


def test_a_group_playbook_is_a_group_mass_send_created_then_sent(
        sessions: sessionmaker[Session], settings: Settings, wecom_api: FakeWeCom,
        group_adapters: dict[str, Any]) -> None:
    _groups(sessions, settings)
    with sessions() as s:
        assert playbooks.apply(s, PLAYBOOK, file="breakfast.yaml")["changed"]
        s.commit()
    with sessions() as s:
        [would] = playbooks.dry_run(s, "早餐打卡提醒", days=1, now=FIRES)
        assert (would["group"], would["chat_id"], would["outcome"]) == (
            BREAKFAST, "wrBreakfast", "would_send")
        s.rollback()
    with sessions() as s:
        assert triggers.on_minute(s, FIRES + dt.timedelta(minutes=1)) == 0
        assert triggers.on_minute(s, FIRES) == 1
        assert triggers.on_minute(s, FIRES) == 0  # the same occurrence sends nothing twice
        s.commit()
    run_jobs(sessions)
    [call] = wecom_api.calls("/cgi-bin/externalcontact/add_msg_template")
    assert call.body == {"chat_type": "group", "sender": "advisor_chen",
                         "chat_id_list": ["wrBreakfast"],
                         "text": {"content": f"早上好！{BREAKFAST}今天的打卡开始啦，2 位伙伴等你"}}
    with sessions() as s:
        [delivery] = s.scalars(select(Delivery)).all()
        assert (delivery.channel, delivery.state, delivery.customer_id,
                delivery.provider_message_id) == ("wecom_group_mass", "created", None,
                                                  "mass-1")
        group = s.scalars(select(CustomerGroup).where(
            CustomerGroup.chat_id == "wrBreakfast")).one()
        assert groups.mass_send_counts(s, now=FIRES)[group.id] == {"created": 1, "sent": 0}
        adapter = group_adapters["wecom_group_mass"]
        assert refresh_results(s, adapter) == 0  # the owner has not confirmed yet
        wecom_api.mass_status["mass-1"] = 1
        assert refresh_results(s, adapter) == 1
        s.commit()
        result = wecom_api.calls("/cgi-bin/externalcontact/get_groupmsg_send_result")[-1]
        assert result.body["userid"] == "advisor_chen" and result.body["msgid"] == "mass-1"
    with sessions() as s:
        assert s.scalars(select(Delivery)).one().state == "sent"
        group = s.scalars(select(CustomerGroup).where(
            CustomerGroup.chat_id == "wrBreakfast")).one()
        [sent] = groups.mass_sends(s, group)
        assert (sent["state_zh"], sent["playbook"]) == ("已发送", "早餐打卡提醒")
    # the next morning is a new occurrence
    with sessions() as s:
        assert triggers.on_minute(s, FIRES + dt.timedelta(days=1)) == 1
        s.commit()


def _refused(sessions: sessionmaker[Session], text: str) -> InvalidPlaybook:
    with sessions() as s, pytest.raises(InvalidPlaybook) as caught:
        playbooks.apply(s, text, file="groups.yaml")
    return caught.value


@pytest.mark.parametrize(("change", "where", "reason"), [
    (("{group: 禾源良品·早餐打卡群}", "{group: 早餐群}"), "audience.group",
     "no customer group named '早餐群'"),
    (('{schedule: "30 7 * * *"}', "{event: join_group}"), "trigger",
     "a group playbook runs on a schedule"),
    (("{{ group.name }}", "{{ customer.name }}"), "steps[0].send.template",
     "unknown name 'customer'"),
    (("channel: wecom_group_mass", "channel: sms"), "steps[0].send.channel",
     "a group playbook sends on wecom_group_mass"),
    (("steps:\n", "steps:\n  - wait: 1h\n"), "steps[0].wait",
     "a group playbook's steps are send steps"),
    (("status: active\n", "status: active\nholdout: 0.1\n"), "holdout",
     "a group playbook has no holdout"),
])
def test_refused_group_playbooks_name_the_file_and_the_step(
        sessions: sessionmaker[Session], settings: Settings, change: tuple[str, str],
        where: str, reason: str) -> None:
    _groups(sessions, settings)
    error = _refused(sessions, PLAYBOOK.replace(*change))
    assert error.message.startswith(f"groups.yaml at {where}: "), error.message
    assert reason in error.message


def test_a_customer_playbook_cannot_send_to_groups(sessions: sessionmaker[Session]) -> None:
    error = _refused(sessions, """\
name: 误用
trigger: {event: join_group}
steps:
  - send: {channel: wecom_group_mass, template: "欢迎"}
""")
    assert error.message == ("groups.yaml at steps[0].send.channel: wecom_group_mass sends to "
                             "customer groups: the playbook's audience must be {group: NAME}")


def test_a_draft_may_name_a_group_not_synced_yet_and_pausing_always_works(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    _groups(sessions, settings)
    with sessions() as s:
        draft = PLAYBOOK.replace("status: active", "status: draft").replace(
            BREAKFAST, "下周新建的群")
        assert playbooks.apply(s, draft, file="draft.yaml")["changed"]
        with pytest.raises(InvalidPlaybook, match="no customer group named '下周新建的群'"):
            playbooks.apply(s, draft.replace("status: draft", "status: active"),
                            file="draft.yaml")
        playbooks.apply(s, PLAYBOOK, file="breakfast.yaml")
        group = s.scalars(select(CustomerGroup).where(CustomerGroup.name == BREAKFAST)).one()
        group.name = "禾源良品·早餐打卡 1 群"  # renamed in WeCom, synced
        s.flush()
        assert playbooks.set_status(s, "早餐打卡提醒", "paused")["changed"]
