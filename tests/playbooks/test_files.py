"""Playbook files: the issue's format is accepted; every malformed kind is refused naming
the file, the place and the reason, and nothing changes; versions and status."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from siyu.playbooks import service
from siyu.playbooks.errors import InvalidPlaybook
from siyu.playbooks.models import Playbook, PlaybookVersion
from tests.playbooks.conftest import apply, count

ISSUE_EXAMPLE = """\
name: 复购提醒
status: active
priority: 50
trigger: {order_status: paid}
audience: 'has(email) and not tag("投诉中")'
reentry: once
holdout: 0.1
goal: {order_status: paid, within: 14d}
steps:
  - send: {channel: email, purpose: marketing, subject: "{{ customer.name }}，您的益生菌快吃完了", \
template: "..."}
  - wait: 3d
  - branch: {if: 'orders(last 3d) >= 1', then: exit}
  - send: {channel: sms, purpose: marketing, template: "..."}
  - task: {kind: call, assignee: advisor, due: 1h, note: "..."}
  - wait_for: {event: appointment_confirmed, within: 3d, else: exit}
  - tag: {add: 已提醒复购}
  - points: {award: 50, reason: 邀请好友}
"""

BASE = """\
name: 测试剧本
status: active
trigger: {event: signup}
steps:
"""


def test_the_issue_example_is_accepted_and_versioned(db: Session) -> None:
    assert service.apply(db, ISSUE_EXAMPLE, file="repurchase.yaml") == {
        "name": "复购提醒", "version": 1, "changed": True}
    assert service.apply(db, ISSUE_EXAMPLE, file="repurchase.yaml") == {
        "name": "复购提醒", "version": 1, "changed": False}
    changed = ISSUE_EXAMPLE.replace("priority: 50", "priority: 60")
    assert service.apply(db, changed, file="repurchase.yaml")["version"] == 2
    shown = service.show(db, "复购提醒")
    assert shown["priority"] == 60 and [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["spec"]["steps"][1] == {"kind": "wait", "seconds": 3 * 86400}


def test_json_files_are_read_too(db: Session) -> None:
    text = ('{"name": "JSON剧本", "trigger": {"event": "signup"}, '
            '"steps": [{"wait": "1h"}]}')
    assert service.apply(db, text, file="pb.json")["changed"] is True
    assert service.show(db, "JSON剧本")["status"] == "draft"


@pytest.mark.parametrize("steps,place,reason", [
    ("  - shout: {text: hi}\n", "steps[0]", "unknown step 'shout'"),
    ("  - send: {channel: fax, template: hi}\n", "steps[0].send.channel",
     "unknown channel 'fax'"),
    ("  - send: {channel: sms, template: hi, colour: red}\n", "steps[0].send.colour",
     "unknown field 'colour'"),
    ("  - send: {channel: sms, template: '{{ customer.name '}\n", "steps[0].send.template",
     "template does not compile"),
    ("  - send: {channel: sms, template: '{{ cusomer.name }}'}\n", "steps[0].send.template",
     "unknown name 'cusomer'"),
    ("  - wait: 1h\n  - branch: {if: 'orders(last 3d) >=', then: exit}\n", "steps[1].branch.if",
     "rule error at position"),
    ("  - wait_for: {event: appointment_confirmed}\n", "steps[0].wait_for.within",
     "needs a bound"),
    ("  - wait: soon\n", "steps[0].wait", "not a duration"),
    ("  - send: {channel: email, template: hi}\n", "steps[0].send.subject", "needs a subject"),
])
def test_malformed_playbooks_are_refused_naming_the_place(
        db: Session, steps: str, place: str, reason: str) -> None:
    before = (count(db, Playbook), count(db, PlaybookVersion))
    with pytest.raises(InvalidPlaybook) as info:
        service.apply(db, BASE + steps, file="bad.yaml")
    problem = info.value.details[0]
    assert problem["file"] == "bad.yaml"
    assert problem["step"] == place
    assert reason in problem["reason"]
    assert (count(db, Playbook), count(db, PlaybookVersion)) == before


def test_an_unknown_top_level_field_and_bad_yaml_are_refused(db: Session) -> None:
    with pytest.raises(InvalidPlaybook) as info:
        service.apply(db, BASE + "  - wait: 1h\nschedule_at: now\n", file="x.yaml")
    assert info.value.details[0]["step"] == "schedule_at"
    with pytest.raises(InvalidPlaybook) as info:
        service.apply(db, "name: [unclosed\n", file="y.yaml")
    assert info.value.details[0]["step"].startswith("line ")


def test_an_active_playbook_is_never_half_updated(db: Session) -> None:
    apply(db, BASE + "  - wait: 1h\n")
    with pytest.raises(InvalidPlaybook):
        service.apply(db, BASE.replace("status: active", "status: paused")
                      + "  - wait: 1h\n  - send: {channel: fax, template: x}\n", file="pb.yaml")
    shown = service.show(db, "测试剧本")
    assert shown["status"] == "active" and shown["version"] == 1


def test_pause_and_resume_are_versions_of_the_file(db: Session) -> None:
    apply(db, BASE + "  - wait: 1h\n")
    assert service.set_status(db, "测试剧本", "paused")["version"] == 2
    assert service.show(db, "测试剧本")["status"] == "paused"
    assert "status: paused" in service.show(db, "测试剧本")["source"]
    assert service.set_status(db, "测试剧本", "active")["version"] == 3


def test_webhooks_only_to_allowed_hosts(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.channels import config

    monkeypatch.setenv("SIYU_WEBHOOK_ALLOW_HOSTS", '["crm.brand.example"]')
    config.get_channel_settings.cache_clear()
    try:
        with pytest.raises(InvalidPlaybook) as info:
            apply(db, BASE + "  - webhook: {url: 'http://evil.example/x'}\n")
        assert info.value.details[0]["step"] == "steps[0].webhook.url"
        assert apply(db, BASE + "  - webhook: {url: 'https://crm.brand.example/h'}\n")["changed"]
    finally:
        config.get_channel_settings.cache_clear()
