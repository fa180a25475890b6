"""``siyu appointments``: service types, slots, bookings and their status."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.kit.cli import console, handle_errors, open_env, print_json

app = typer.Typer(help="Appointments with advisors: service types, slots, bookings.",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def _advisor(session: Session, username: str) -> int:
    from sqlalchemy import select

    from siyu.auth.models import User

    uid = session.scalar(select(User.id).where(User.username == username))
    if uid is None:
        raise typer.BadParameter(f"no staff user {username!r}", param_hint="--advisor")
    return int(uid)


def _customer(session: Session, settings: Settings, ref: str) -> int:
    from siyu.privacy.service import resolve_ref

    cid = resolve_ref(session, settings, ref)
    if cid is None:
        raise typer.BadParameter("that person was erased", param_hint="REF")
    return cid


@app.command("service-type")
@handle_errors
def service_type(name: Annotated[str, typer.Argument(help="e.g. 营养咨询")],
                 minutes: Annotated[int, typer.Option("--minutes", help="duration")] = 15,
                 description: Annotated[str | None, typer.Option("--description")] = None
                 ) -> None:
    """Create or update a service type."""
    from siyu.appointments import service

    env = open_env()
    with env.session() as s:
        row = service.save_service_type(s, name, minutes, description=description)
        console.print(f"服务「{row.name}」{row.minutes} 分钟（#{row.id}）")


@app.command("publish")
@handle_errors
def publish(advisor: Annotated[str, typer.Option("--advisor", help="the advisor's username")],
            service_name: Annotated[str, typer.Option("--service", help="service type name")],
            start: Annotated[str, typer.Option("--start",
                                               help="first start, brand time: 2026-12-05T10:00")],
            count: Annotated[int, typer.Option("--count", min=1, max=500)] = 1,
            every: Annotated[int, typer.Option("--every", help="minutes between starts",
                                               min=5)] = 30,
            location: Annotated[str | None, typer.Option("--location")] = None,
            as_json: JsonOpt = False) -> None:
    """Publish COUNT slots from START, EVERY minutes apart."""
    from zoneinfo import ZoneInfo

    from siyu.appointments import service

    env = open_env()
    try:
        first = dt.datetime.fromisoformat(start)
    except ValueError as exc:
        raise typer.BadParameter("expected YYYY-MM-DDTHH:MM", param_hint="--start") from exc
    if first.tzinfo is None:
        first = first.replace(tzinfo=ZoneInfo(env.settings.timezone))
    with env.session() as s:
        ids = service.publish_slots(
            s, _advisor(s, advisor), service.service_type_named(s, service_name).id,
            [first + dt.timedelta(minutes=every * i) for i in range(count)], location=location)
    if as_json:
        print_json({"created": len(ids), "skipped": count - len(ids), "ids": ids})
    else:
        console.print(f"已发布 {len(ids)} 个时段" + (f"，{count - len(ids)} 个已存在"
                                                 if count > len(ids) else ""))


@app.command("slots")
@handle_errors
def list_slots(advisor: Annotated[str | None, typer.Option("--advisor")] = None,
               free: Annotated[bool, typer.Option("--free", help="only free slots")] = False,
               as_json: JsonOpt = False) -> None:
    """Upcoming open slots."""
    from siyu.appointments import service
    from siyu.db import utcnow

    env = open_env()
    with env.sessions() as s:
        rows = service.slots(s, advisor_ids=[_advisor(s, advisor)] if advisor else None,
                             start=utcnow(), free_only=free, timezone=env.settings.timezone)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    table = Table("时段", "时间", "服务", "顾问", "状态")
    for r in rows:
        table.add_row(str(r.id), r.label, r.service, r.advisor, "可预约" if r.free else "已约")
    console.print(table)


@app.command("book")
@handle_errors
def book(slot_id: Annotated[int, typer.Argument(help="slot id")],
         ref: Annotated[str, typer.Argument(help="customer: siyu id or kind:value")],
         confirm: Annotated[bool, typer.Option("--confirm", help="confirmed at once")] = False,
         as_json: JsonOpt = False) -> None:
    """Book a slot for a customer (exit 2 with 409 slot_taken when it is held)."""
    from siyu.appointments import service

    env = open_env()
    with env.session() as s:
        appt = service.book(s, slot_id, _customer(s, env.settings, ref), channel="cli",
                            confirm=confirm, timezone=env.settings.timezone)
        out = service.describe(s, [appt], show_pii=False, timezone=env.settings.timezone)[0]
    _print(out, as_json)


@app.command("status")
@handle_errors
def set_status(appointment_id: Annotated[int, typer.Argument()],
               status: Annotated[str, typer.Argument(
                   help="confirmed, cancelled, attended or no_show")],
               reason: Annotated[str | None, typer.Option("--reason")] = None,
               as_json: JsonOpt = False) -> None:
    """Confirm, cancel, or record attended / no-show."""
    from siyu.appointments import service

    env = open_env()
    with env.session() as s:
        appt = service.set_status(s, appointment_id, status, reason=reason,
                                  timezone=env.settings.timezone)
        out = service.describe(s, [appt], show_pii=False, timezone=env.settings.timezone)[0]
    _print(out, as_json)


@app.command("list")
@handle_errors
def list_appointments(advisor: Annotated[str | None, typer.Option("--advisor")] = None,
                      as_json: JsonOpt = False) -> None:
    """Appointments (masked phones), by start time."""
    from siyu.appointments import service

    env = open_env()
    with env.sessions() as s:
        rows = service.list_appointments(
            s, advisor_id=_advisor(s, advisor) if advisor else None)
        out = service.describe(s, rows, show_pii=False, timezone=env.settings.timezone)
    if as_json:
        print_json(out)
        return
    table = Table("预约", "时间", "服务", "顾问", "客户", "状态")
    for a in out:
        table.add_row(str(a["id"]), a["label"], a["service"], a["advisor"], a["customer"],
                      a["status_zh"])
    console.print(table)


def _print(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(out)
    else:
        console.print(f"预约 #{out['id']}：{out['label']} {out['service']}（{out['advisor']}），"
                      f"客户 {out['customer']}，{out['status_zh']}")
