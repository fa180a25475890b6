"""``siyu scores``, ``siyu clv`` and ``siyu analytics``: recompute scores, fit CLV models,
LTV/CAC by acquisition channel and the dashboard summary."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siyu.analytics.config import load_config
from siyu.db import utcnow
from siyu.kit.cli import console, err_console, handle_errors, open_env, print_json
from siyu.kit.timeutil import as_aware

scores_app = typer.Typer(help="Customer scores: RFM, lifecycle, CLV, true fans, audiences, "
                              "customer asset.", no_args_is_help=True)
clv_app = typer.Typer(help="Customer lifetime value: fit BG/NBD + Gamma-Gamma on the orders.",
                      no_args_is_help=True)
analytics_app = typer.Typer(help="Analytics reports: LTV/CAC by channel, dashboard summary.",
                            no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date (YYYY-MM-DD): {value!r}",
                                 param_hint=option) from None


def _as_of(value: str | None, timezone: str) -> dt.datetime:
    """``--now``: a date means the end of that day in the brand's zone; a naive date-time is
    read in the brand's zone."""
    if value is None:
        return utcnow()
    text = value.strip()
    if len(text) == 10:
        day = _parse_date(text, "--now")
        from siyu.analytics.timeutil import local_midnight  # numpy: loaded when used

        return local_midnight(day + dt.timedelta(days=1), timezone) - dt.timedelta(
            microseconds=1)
    try:
        return as_aware(dt.datetime.fromisoformat(text), timezone)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date or date-time: {value!r}",
                                 param_hint="--now") from None


@scores_app.command("recompute")
@handle_errors
def recompute(
    now: Annotated[str | None, typer.Option(
        "--now", help="score as of this ISO date (end of day) or date-time, in "
                      "SIYU_TIMEZONE; default: now")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every active customer's scores (for cron; the worker also runs it after
    ingest) and queue a refresh of the saved segments."""
    from siyu.analytics import service  # numpy/scipy: loaded when used
    from siyu.segments import service as segments

    config = load_config()
    env = open_env()
    moment = _as_of(now, env.settings.timezone)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=as_json) as bar:
        task = bar.add_task("重新计算评分", total=5)

        def advance(step: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=step)

        with env.session() as session:
            result = service.recompute_scores(session, now=moment, config=config,
                                              timezone=env.settings.timezone, progress=advance)
            segments.request_refresh(session, reason="scores")
    if as_json:
        print_json(result.to_dict())
        return
    table = Table("生命周期", "客户数")
    for stage, count in result.by_lifecycle.items():
        table.add_row(stage, str(count))
    console.print(table)
    console.print(f"scored {result.customers} customers ({result.buyers} buyers, "
                  f"{result.true_fans} true fans, {result.transitions} stage changes) "
                  f"in {result.seconds:.1f}s", highlight=False)


@scores_app.command("show")
@handle_errors
def show(customer_id: Annotated[int, typer.Argument(help="customer id")],
         as_json: JsonOpt = False) -> None:
    """Show one customer's scores with the reason for each."""
    from siyu.analytics import service  # numpy/scipy: loaded when used
    env = open_env()
    with env.session() as session:
        if as_json:
            print_json(service.customer_scores(session, customer_id))
            return
        card = service.score_card(session, customer_id)
        if not card:
            service.customer_scores(session, customer_id)  # raises the precise error
    table = Table("评分", "值", "原因")
    for row in card:
        table.add_row(row["label"], row["value"], row["why"])
    console.print(table)


@clv_app.command("fit")
@handle_errors
def fit(
    calibration_end: Annotated[str, typer.Option(
        "--calibration-end", help="last day of the calibration period (YYYY-MM-DD, "
                                  "inclusive, in SIYU_TIMEZONE)")],
    time_unit: Annotated[str, typer.Option("--time-unit", help="day or week")] = "week",
    holdout_end: Annotated[str | None, typer.Option(
        "--holdout-end", help="last day of a holdout period: prints actual vs predicted "
                              "repeat purchases in it")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit BG/NBD and Gamma-Gamma on the purchases in the database and make the model
    active for the CLV scores."""
    from siyu.analytics import service  # numpy/scipy: loaded when used
    if time_unit not in ("day", "week"):
        raise typer.BadParameter(f"must be 'day' or 'week', not {time_unit!r}",
                                 param_hint="--time-unit")
    cal = _parse_date(calibration_end, "--calibration-end")
    hold = _parse_date(holdout_end, "--holdout-end") if holdout_end else None
    env = open_env()
    today = utcnow().astimezone(ZoneInfo(env.settings.timezone)).date()
    with env.session() as session:
        result = service.fit_clv(session, calibration_end=cal, time_unit=time_unit,
                                 holdout_end=hold, today=today,
                                 timezone=env.settings.timezone)
    if as_json:
        print_json(result.to_dict())
        return
    b, g = result.bgnbd, result.gamma_gamma
    console.print(f"CLV model #{result.model_id} on {result.n_customers} customers "
                  f"({result.n_repeaters} with repeat purchases), time unit {time_unit}",
                  highlight=False)
    lines = [f"BG/NBD       r = {b['r']:.4f}  alpha = {b['alpha']:.4f}  a = {b['a']:.4f}  "
             f"b = {b['b']:.4f}",
             f"             log-likelihood = {b['log_likelihood']:.2f}",
             f"Gamma-Gamma  p = {g['p']:.4f}  q = {g['q']:.4f}  gamma = {g['gamma']:.4f}"]
    if result.holdout is not None:
        lines.append(f"holdout ({result.holdout['length']:g} {time_unit}s): actual repeat "
                     f"purchases {result.holdout['actual']:.0f}, predicted "
                     f"{result.holdout['predicted']:.1f}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    if not result.converged:
        err_console.print("[yellow]warning:[/yellow] the optimiser did not report convergence")


@clv_app.command("models")
@handle_errors
def models(as_json: JsonOpt = False) -> None:
    """List the fitted CLV models, newest first."""
    from siyu.analytics import service  # numpy/scipy: loaded when used
    env = open_env()
    with env.session() as session:
        rows = service.list_models(session)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "calibration end", "unit", "r", "alpha", "a", "b", "p", "q", "gamma",
                  "active")
    for m in rows:
        b, g = m["bgnbd"], m["gamma_gamma"]
        table.add_row(str(m["id"]), m["calibration_end"], m["time_unit"],
                      *(f"{b[k]:.3f}" for k in ("r", "alpha", "a", "b")),
                      *(f"{g[k]:.3f}" for k in ("p", "q", "gamma")),
                      "yes" if m["is_active"] else "")
    console.print(table)


@analytics_app.command("ltv-cac")
@handle_errors
def ltv_cac(as_json: JsonOpt = False) -> None:
    """LTV and CAC per acquisition channel (acquisition costs from SIYU_SCORING_CONFIG)."""
    from siyu.analytics import service  # numpy/scipy: loaded when used
    config = load_config()
    env = open_env()
    with env.session() as session:
        report = service.ltv_cac(session, config)
    if as_json:
        print_json(report)
        return
    table = Table("渠道", "客户数", "LTV", "CAC", "LTV/CAC")
    for row in report["channels"]:
        table.add_row(row["channel"], str(row["customers"]), f"{row['ltv']:,.2f}",
                      "—" if row["cac"] is None else f"{row['cac']:,.2f}",
                      "—" if row["ltv_cac"] is None else f"{row['ltv_cac']:.2f}")
    console.print(table)
    if report["unconfigured"]:
        err_console.print("no acquisition cost configured for: "
                          + ", ".join(report["unconfigured"]), highlight=False)


@analytics_app.command("summary")
@handle_errors
def summary(as_json: JsonOpt = False) -> None:
    """The dashboard's numbers: stages, tiers, audiences, true fans, CLV distribution."""
    from siyu.analytics import service  # numpy/scipy: loaded when used
    config = load_config()
    env = open_env()
    with env.session() as session:
        data: dict[str, Any] = service.summary(session, config, now=utcnow(),
                                               timezone=env.settings.timezone)
    if as_json:
        print_json(data)
        return
    console.print(f"customers {data['customers']}, scored {data['scored']}, true fans "
                  f"{data['true_fans']['count']} / {data['true_fans']['goal']}",
                  highlight=False)
    for title, key, name in (("生命周期", "by_lifecycle", "label"),
                             ("RFM 分层", "by_rfm_tier", "tier"),
                             ("人群类型", "by_audience", "label")):
        table = Table(title, "客户数")
        for row in data[key]:
            table.add_row(row[name], str(row["count"]))
        console.print(table)
