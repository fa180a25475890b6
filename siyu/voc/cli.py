"""``siyu voc``: train, evaluate and try the feedback models; the factor tree; drivers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from siyu.kit.cli import console, handle_errors, open_env, print_json

app = typer.Typer(help="Voice of the customer (客户之声): feedback models, factors, drivers.",
                  no_args_is_help=True)
factors_app = typer.Typer(help="The factor tree (categories → subcategories).",
                          no_args_is_help=True)
app.add_typer(factors_app, name="factors")

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
DataOpt = Annotated[Path, typer.Option("--data", help="labelled CSV (header row, UTF-8)")]
TextOpt = Annotated[str | None, typer.Option("--text", help="text column (default text|review)")]
SentOpt = Annotated[str | None, typer.Option(
    "--sentiment", help="sentiment column, 1/0 or positive/negative (default sentiment|label)")]
FactorOpt = Annotated[str | None, typer.Option(
    "--factor", help="factor column (default factor|cat)")]


@app.command("train")
@handle_errors
def train(data: DataOpt, text: TextOpt = None, sentiment: SentOpt = None,
          factor: FactorOpt = None, as_json: JsonOpt = False) -> None:
    """Train the sentiment and/or factor model from the labels the file holds."""
    from siyu.voc import service

    env = open_env()
    with console.status("训练客户之声模型…"), env.session() as session:
        out = service.train(session, service.read_file(data), source=str(data),
                            text_col=text, sentiment_col=sentiment, factor_col=factor)
    if as_json:
        print_json(out)
        return
    for kind in ("sentiment", "factor"):
        if kind in out:
            r = out[kind]
            cv = f"{r['cv_accuracy']:.4f}" if r.get("cv_accuracy") is not None else "n/a"
            console.print(f"{kind} model #{r['model_id']}: {out['n']:,} examples, trained in "
                          f"{r['seconds']:.1f} s (cross-validated accuracy {cv})",
                          highlight=False)


@app.command("eval")
@handle_errors
def evaluate(data: DataOpt, text: TextOpt = None, sentiment: SentOpt = None,
             factor: FactorOpt = None, as_json: JsonOpt = False) -> None:
    """Accuracy and macro-F1 of the active models on a labelled file."""
    from siyu.voc import service

    env = open_env()
    with env.session() as session:
        out = service.evaluate(session, service.read_file(data), source=str(data),
                               text_col=text, sentiment_col=sentiment, factor_col=factor)
    if as_json:
        print_json(out)
        return
    for kind in ("sentiment", "factor"):
        if kind in out:
            r = out[kind]
            console.print(f"{kind}: accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}"
                          f"  on {r['n']:,} texts ({r['texts_per_second']:,.0f} texts/s)",
                          highlight=False)


@app.command("classify")
@handle_errors
def classify(text: Annotated[str, typer.Argument(help="a piece of customer feedback")],
             as_json: JsonOpt = False) -> None:
    """Overall sentiment and the factors the text names, each with its own sentiment."""
    from siyu.voc import service

    env = open_env()
    with env.session() as session:
        result = service.classify(session, [text])[0].to_dict()
    if as_json:
        print_json(result)
        return
    mark = {"positive": "正面", "negative": "负面"}
    console.print(f"{mark[result['sentiment']]} ({result['confidence']:.2f})", highlight=False)
    for m in result["mentions"]:
        console.print(f"  {m['factor']}: {mark[m['sentiment']]} ({m['confidence']:.2f})  "
                      f"「{m['clause']}」", highlight=False)


@factors_app.command("show")
@handle_errors
def factors_show(as_json: JsonOpt = False) -> None:
    """The factor tree in use (the demo brand's until one is loaded)."""
    from siyu.voc import service

    env = open_env()
    with env.session() as session:
        tree = service.factor_tree(session)
    data: dict[str, Any] = tree.to_dict()
    if as_json:
        print_json(data)
        return
    for cat in data["categories"]:
        console.print(cat["name"], highlight=False)
        for sub in cat["children"]:
            console.print(f"  └ {sub['name']}  ({'、'.join(sub['keywords'][:6])})",
                          highlight=False)


@factors_app.command("load")
@handle_errors
def factors_load(file: Annotated[Path, typer.Argument(help="factor tree JSON")]) -> None:
    """Replace the factor tree with one from JSON (siyu/voc/data/factors_telecom.json shows
    the shape)."""
    from siyu.voc import service

    env = open_env()
    with env.session() as session:
        n = service.load_factor_tree(session, service.read_file(file), source=str(file))
    console.print(f"factor tree loaded: {n} factors", highlight=False)


@app.command("drivers")
@handle_errors
def drivers(
    survey: Annotated[str, typer.Option("--survey", help="survey name")],
    target: Annotated[str, typer.Option("--target", help="the outcome question (e.g. csat)")],
    method: Annotated[str, typer.Option(
        "--method", help="shapley | relative_weights | logistic | text")] = "shapley",
    as_json: JsonOpt = False,
) -> None:
    """Key drivers of an outcome: importance of each factor, share of R², performance, rank."""
    from rich.table import Table

    from siyu.voc import analysis

    env = open_env()
    with env.session() as session:
        out = analysis.survey_drivers(session, survey, target, method=method)
    if as_json:
        print_json(out)
        return
    r2_name = "McFadden R²" if method == "logistic" else "R²"
    console.print(f"{target} ← {method}: {r2_name} {out['r2']:.4f} over {out['n']:,} responses"
                  f"{'' if out['exact'] else ' (sampled estimate)'}", highlight=False)
    table = Table("排名", "因素", "重要度", "占比", "表现", "象限")
    for d in out["drivers"]:
        table.add_row(str(d["rank"]), d["factor"], f"{d['importance']:.4f}",
                      f"{d['share']:.1%}", f"{d['performance']:.2f}", d["quadrant"])
    console.print(table)
    for c in out["categories"]:
        kids = "、".join(f"{k['name']} {k['share']:.0%}" for k in c["children"]
                        if k["importance"] > 0)
        console.print(f"{c['name']} {c['share']:.0%}: {kids}", highlight=False)


def import_survey_responses(file: Path, survey: str | None, scale: list[str] | None,
                            as_json: bool) -> None:
    """``siyu import survey-responses FILE --survey NAME [--scale COL=nps|csat|ces]``."""
    from siyu.voc import surveys

    if not survey:
        raise typer.BadParameter("survey-responses needs --survey NAME", param_hint="--survey")
    from siyu.voc import service

    env = open_env()
    scales = surveys.parse_scales(scale or [])
    with console.status("导入问卷答卷…"), env.session() as session:
        report = surveys.import_responses(session, service.read_file(file), survey=survey,
                                          scales=scales, source=str(file)).to_dict()
    if as_json:
        print_json(report)
        return
    console.print(f"survey {report['survey']}{' (created)' if report['created'] else ''}: "
                  f"rows {report['rows']}  added {report['added']}  duplicates "
                  f"{report['duplicates']}  rejected {report['rejected']}", highlight=False)
    for e in report["errors"][:10]:
        console.print(f"  line {e['line']} {e['field']}: {e['reason']}", highlight=False)


@app.command("link")
@handle_errors
def link(survey: Annotated[str, typer.Option("--survey", help="survey name")],
         customer: Annotated[int | None, typer.Option("--customer",
                                                       help="siyu customer id")] = None,
         base_url: Annotated[str, typer.Option("--base-url")] = "http://127.0.0.1:8000"
         ) -> None:
    """Print a signed survey link for one recipient (one response per link)."""
    from siyu.voc import surveys

    env = open_env()
    with env.session() as session:
        s = surveys.get_survey(session, survey)
        token = surveys.sign_link(env.settings, s, customer_id=customer)
    console.print(f"{base_url.rstrip('/')}/s/{token}", highlight=False, soft_wrap=True)
