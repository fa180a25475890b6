"""``siyu demo``: seed the demo brand 禾源良品 into an empty database and serve it."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from siyu.demo import generator
from siyu.kit.cli import Env, console, handle_errors, open_env

app = typer.Typer(help="Seed and serve the demo brand 禾源良品 (a fictional health-food brand).",
                  invoke_without_command=True)

_PHASES = {"customers": "生成客户、订单与行为", "linking": "跨渠道识别与合并 (ingest)",
           "statuses": "订单状态流转 (ingest)"}
_SCORE_STEPS = "计算客户评分"


@contextmanager
def _progress_bar() -> Iterator[generator.Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(_PHASES.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield report


def _seed(env: Env, customers: int, seed: int, now: str | None) -> generator.SeedResult:
    use_demo_scoring_config()
    with _progress_bar() as report:
        result = generator.seed_demo(env.sessions, env.settings, customers=customers, seed=seed,
                                     now=generator.parse_now(now), progress=report)
    console.print(f"seeded {customers:,} customers in {result.seconds:.1f} s "
                  f"({result.merges} merges, {result.conflicts} conflicts to review)",
                  highlight=False)
    _playbooks(env, generator.parse_now(now), seed)
    _score(env, generator.parse_now(now))
    _knowledge_base(env, customers)
    _journeys(env, generator.parse_now(now), customers)
    _voice_of_customer(env, generator.parse_now(now), customers)
    _appointments(env, generator.parse_now(now), seed)
    _growth(env, generator.parse_now(now), seed)
    _groups(env, generator.parse_now(now), seed)
    with env.session() as session:
        counts = generator.table_counts(session)
    console.print("  " + ", ".join(f"{name} {n:,}" for name, n in counts.items()),
                  highlight=False)
    if result.password:
        console.print("demo staff (one password for all; shown once, stored only as a hash):",
                      highlight=False)
        for username, display, role in result.staff:
            console.print(f"  {username:<12} {role:<9} {display}", highlight=False)
        console.print(f"  password: [bold]{result.password}[/bold]", highlight=False)
    return result


HISTORY_MAX_CUSTOMERS = 100_000
# The demo brand's scoring config: its cost of acquiring a customer per channel, so the
# dashboard's LTV/CAC has ratios. An operator's own SIYU_SCORING_CONFIG wins.
DEMO_SCORING_CONFIG = Path(__file__).resolve().parent / "data" / "scoring.json"


def use_demo_scoring_config() -> None:
    """Point SIYU_SCORING_CONFIG at the demo's file unless one is set already."""
    from siyu.analytics.config import CONFIG_ENV

    os.environ.setdefault(CONFIG_ENV, str(DEMO_SCORING_CONFIG))


def _customers_of(env: Env) -> int:
    from sqlalchemy import func, select

    from siyu.customers.models import Customer

    with env.session() as session:
        return int(session.scalar(select(func.count()).select_from(Customer)) or 0)


def _month_ends(now: dt.datetime, months: int) -> list[dt.datetime]:
    """The last ``months`` month ends before ``now`` (UTC midnights), oldest first."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ends = []
    for _ in range(months):
        ends.append(first - dt.timedelta(seconds=1))
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return sorted(ends)


def _knowledge_base(env: Env, customers: int) -> None:
    """The service desk's knowledge base for the demo brand, trained, and its advisors'
    skill groups."""
    from siyu.channels.phone.demo import seed_call_history
    from siyu.db import utcnow
    from siyu.kb.demo import seed_demo_kb
    from siyu.service.demo import seed_agents, seed_service_history

    with console.status("训练客服机器人意图模型…"), env.session() as session:
        report = seed_demo_kb(session)
        seed_agents(session)
        history = seed_service_history(session, now=utcnow(),
                                       conversations=min(600, max(150, customers // 30)))
        calls = seed_call_history(session, now=utcnow())
    if report is not None:
        console.print(f"knowledge base: {report.intents} intents, {report.examples} examples, "
                      f"trained in {report.seconds:.1f} s", highlight=False)
    if history:
        console.print(f"service history: {history:,} closed conversations", highlight=False)
    if calls:
        console.print(f"phone history: {calls:,} calls", highlight=False)


def _journeys(env: Env, now: dt.datetime, customers: int) -> None:
    """Scenarios, their conversations and the journeys' recomputation (siyu.demo.journeys)."""
    from siyu.demo.journeys import seed_demo_journeys

    with console.status("识别客户旅程与场景…"):
        report = seed_demo_journeys(env.sessions, now=now, timezone=env.settings.timezone,
                                    conversations_per_kind=min(60, max(12, customers // 400)))
    counts = "，".join(f"{name} {n:,}" for name, n in report.members.items())
    console.print(f"journeys: {counts} (recomputed in {report.seconds:.1f} s)",
                  highlight=False)


def _playbooks(env: Env, now: dt.datetime, seed: int) -> None:
    """The demo brand's six SOP playbooks and months of their history (siyu.demo.playbooks);
    before the scores, which count the orders the reminders brought."""
    from siyu.demo.playbooks import HISTORY_DAYS, seed_demo_playbooks

    with console.status("应用自动化剧本并生成历史…"):
        report = seed_demo_playbooks(env.sessions, now=now, seed=seed,
                                     timezone=env.settings.timezone)
    runs = "，".join(f"{name} {n:,}" for name, n in report.runs.items())
    console.print(f"playbooks: {len(report.runs)} active, {HISTORY_DAYS} days of runs ({runs}), "
                  f"{report.sends:,} sends, {report.orders_added:,} orders after reminders "
                  f"({report.seconds:.1f} s)", highlight=False)


def _appointments(env: Env, now: dt.datetime, seed: int) -> None:
    """Advisors' services, slots and appointments, and the playbooks that confirm and
    remind (siyu.demo.appointments)."""
    from siyu.demo.appointments import seed_demo_appointments

    with env.session() as session:
        report = seed_demo_appointments(session, now=now, seed=seed,
                                        timezone=env.settings.timezone)
    statuses = "，".join(f"{k} {v}" for k, v in sorted(report.statuses.items()))
    console.print(f"appointments: {report.slots} slots, {statuses} ({report.seconds:.1f} s)",
                  highlight=False)


def _growth(env: Env, now: dt.datetime, seed: int) -> None:
    """The points ledger opened, referrals through invite and channel codes, the rewards
    catalogue with redemptions and tracked content with clicks (siyu.demo.growth)."""
    from siyu.demo.growth import seed_demo_growth

    with console.status("生成邀请、积分兑换与内容点击…"), env.session() as session:
        report = seed_demo_growth(session, now=now, seed=seed)
    referrals = "，".join(f"{k} {v}" for k, v in sorted(report.referrals.items()))
    console.print(f"growth: {report.opened:,} ledgers opened; referrals {referrals} "
                  f"({report.channel_contacts} through channel codes); "
                  f"{report.redemptions} redemptions ({report.refused_redemptions} refused); "
                  f"{report.links} content links, {report.clicks} clicks "
                  f"({report.seconds:.1f} s)", highlight=False)


def _groups(env: Env, now: dt.datetime, seed: int) -> None:
    """The WeCom customer groups the history's join_group events name, their members (a
    few left), and a group playbook with its group mass sends (siyu.demo.groups)."""
    from siyu.demo.groups import seed_demo_groups

    with console.status("生成客户群与群发…"), env.session() as session:
        report = seed_demo_groups(session, now=now, seed=seed,
                                  timezone=env.settings.timezone)
    console.print(f"groups: {report.groups} customer groups, "
                  f"{sum(report.members.values()):,} members now ({report.left} left), "
                  f"{report.sends} group mass sends ({report.seconds:.1f} s)", highlight=False)


def _voice_of_customer(env: Env, now: dt.datetime | None, customers: int) -> None:
    """Surveys, reviews and the feedback model of the demo brand (siyu.voc.demo's story);
    a small demo gets fewer survey responses (about one per customer, at least 600), so it
    seeds in seconds."""
    from siyu.db import utcnow
    from siyu.voc.demo import seed_demo_voc

    with console.status("生成客户之声演示数据…"), env.session() as session:
        report = seed_demo_voc(session, now=now or utcnow(),
                               responses=min(3000, max(600, customers)))
    if report is not None:
        console.print(f"voice of the customer: {report['responses']:,} survey responses, "
                      f"{report['feedback']:,} feedback texts", highlight=False)


def _score(env: Env, as_of: dt.datetime | None) -> None:
    """Fit the CLV model on the demo's purchases and compute every customer's scores, so the
    dashboard, the 360 score card and score-based segments show something from the start."""
    from zoneinfo import ZoneInfo

    from siyu.analytics import service as analytics
    from siyu.analytics.config import load_config
    from siyu.db import utcnow
    from siyu.demo.segments import refresh_demo_segments
    from siyu.errors import SiyuError

    now = as_of or utcnow()
    today = now.astimezone(ZoneInfo(env.settings.timezone)).date()
    started = time.perf_counter()
    with env.session() as session:
        try:
            fitted = analytics.fit_clv(session, calibration_end=today, time_unit="week",
                                       holdout_end=None, today=today,
                                       timezone=env.settings.timezone)
            session.commit()
            clv = f"CLV model #{fitted.model_id}"
        except SiyuError as exc:  # too few repeat buyers in a tiny demo: scores without CLV
            session.rollback()
            clv = f"no CLV model ({exc})"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(_SCORE_STEPS, total=None)

        def report(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{_SCORE_STEPS}: {step}", completed=done,
                       total=total)

        config = load_config()
        # A small demo gets a score history: month ends of the last half year, then now, so
        # the dashboard's stage transitions have something to show. A large one (a load test)
        # is scored once.
        history = [] if _customers_of(env) > HISTORY_MAX_CUSTOMERS else _month_ends(now, 6)
        for moment in [*history, now]:
            result = analytics.recompute_scores(env.sessions, now=moment, config=config,
                                                timezone=env.settings.timezone,
                                                progress=report)
            with env.session() as session:
                n_segments = refresh_demo_segments(session, now=moment,
                                                   timezone=env.settings.timezone)
    console.print(f"scored {result.customers:,} customers in "
                  f"{time.perf_counter() - started:.1f} s ({clv}; {result.true_fans:,} true fans; "
                  f"{n_segments} saved segments)", highlight=False)


@app.callback()
@handle_errors
def demo(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    customers: Annotated[int, typer.Option(help="customers to seed into an empty database")]
    = 20_000,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 42,
) -> None:
    """Seed the demo brand if the database is empty, then serve the console and API."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from siyu.app import create_app
    from siyu.channels.config import get_channel_settings

    # The demo opens the web chat's customer picker (/chat/demo) unless told otherwise.
    os.environ.setdefault("SIYU_WEBCHAT_DEMO", "1")
    # ... and the console's phone simulator, signing its events with this process's own
    # webhook secret when none is configured (a real call centre needs SIYU_PHONE_SECRET).
    os.environ.setdefault("SIYU_PHONE_DEMO", "1")
    os.environ.setdefault("SIYU_PHONE_SECRET", secrets.token_hex(24))
    os.environ.setdefault("SIYU_PHONE_PUBLIC_URL", f"http://{host}:{port}")
    use_demo_scoring_config()
    get_channel_settings.cache_clear()
    env = open_env(migrate=True)
    with env.session() as session:
        empty = generator.database_is_empty(session)
    password = None
    if empty:
        password = _seed(env, customers, seed, None).password
    with env.session() as session:
        admin_password = generator.ensure_admin(session)
    url = f"http://{host}:{port}"
    console.print(f"console: {url}/   API docs: {url}/docs", highlight=False)
    if get_channel_settings().webchat_demo:
        console.print(f"web chat as a demo customer: {url}/chat/demo", highlight=False)
    if get_channel_settings().phone_demo:
        console.print(f"phone simulator: {url}/service/phone-simulator", highlight=False)
    if admin_password:
        console.print(f"admin login: admin / [bold]{admin_password}[/bold] (shown once)",
                      highlight=False)
    elif password:
        console.print(f"admin login: admin / [bold]{password}[/bold]", highlight=False)
    else:
        console.print("admin login: the password printed when the demo was first seeded; "
                      "to reset it run `siyu user set-password admin`",
                      highlight=False)
    env.engine.dispose()
    uvicorn.run(create_app(env.settings, run_worker=True), host=host, port=port,
                log_level="warning")


@app.command("seed")
@handle_errors
def seed_command(
    customers: Annotated[int, typer.Option(help="active customers to generate")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed; same seed and --now, same data")] = 42,
    now: Annotated[str | None, typer.Option(
        help="end of the two-year history, ISO date or datetime (default: now)")] = None,
) -> None:
    """Seed the demo brand into an empty database (exit 2 if it holds data)."""
    started = time.perf_counter()
    env = open_env(migrate=True)
    _seed(env, customers, seed, now)
    console.print(f"done in {time.perf_counter() - started:.1f} s", highlight=False)
