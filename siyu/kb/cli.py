"""``siyu kb`` (import intents and FAQ, list) and ``siyu nlu`` (train, eval, predict)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siyu.kit.cli import console, handle_errors, open_env, print_json

kb_app = typer.Typer(help="Knowledge base (知识库): intents with examples, FAQ, keyword rules.",
                     no_args_is_help=True)
nlu_app = typer.Typer(help="Intent recognition: train on the knowledge base, evaluate, try.",
                      no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
FileArg = Annotated[Path, typer.Argument(help="CSV file with a header row (UTF-8)")]


@kb_app.command("import-intents")
@handle_errors
def import_intents(file: FileArg, as_json: JsonOpt = False) -> None:
    """Add labelled examples from CSV ``text,intent``; a file with a bad row is refused whole."""
    from siyu.kb import service

    env = open_env()
    with env.session() as session:
        summary = service.import_intents(session, service.read_file(file), source=str(file))
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(f"imported {summary.added:,} examples of {summary.intents} intents "
                  f"({summary.duplicates:,} already stored) from {file}", highlight=False)


@kb_app.command("import-faq")
@handle_errors
def import_faq(file: FileArg, as_json: JsonOpt = False) -> None:
    """Add FAQ entries from CSV ``question,answer[,variants]`` (variants separated by |)."""
    from siyu.kb import service

    env = open_env()
    with env.session() as session:
        summary = service.import_faq(session, service.read_file(file), source=str(file))
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(f"imported {summary.added:,} FAQ entries from {file}", highlight=False)


@kb_app.command("list")
@handle_errors
def list_intents(as_json: JsonOpt = False) -> None:
    """Intents with their example counts."""
    from sqlalchemy import func, select

    from siyu.kb.models import Intent, IntentExample

    env = open_env()
    with env.session() as session:
        rows = session.execute(
            select(Intent.name, Intent.title, Intent.action, Intent.handoff,
                   func.count(IntentExample.id))
            .outerjoin(IntentExample, IntentExample.intent_id == Intent.id)
            .group_by(Intent.id).order_by(Intent.name)).all()
    items: list[dict[str, Any]] = [
        {"name": r[0], "title": r[1], "action": r[2], "handoff": r[3], "examples": r[4]}
        for r in rows]
    if as_json:
        print_json(items)
        return
    table = Table("意图", "名称", "动作", "转人工", "例句数")
    for i in items:
        table.add_row(str(i["name"]), str(i["title"] or ""), str(i["action"] or ""),
                      "是" if i["handoff"] else "", str(i["examples"]))
    console.print(table)


@nlu_app.command("train")
@handle_errors
def train(as_json: JsonOpt = False) -> None:
    """Train the intent model on every stored example and make it the active one."""
    from siyu.kb import service

    env = open_env()
    with console.status("训练意图模型…"), env.session() as session:
        report = service.train(session)
    if as_json:
        print_json(report.to_dict())
        return
    cv = f"{report.cv_accuracy:.4f}" if report.cv_accuracy is not None else "n/a"
    console.print(f"model #{report.model_id}: {report.examples:,} examples, {report.intents} "
                  f"intents, trained in {report.seconds:.1f} s (cross-validated accuracy {cv})",
                  highlight=False)


@nlu_app.command("eval")
@handle_errors
def evaluate(data: Annotated[Path, typer.Option("--data", help="labelled CSV text,intent")],
             as_json: JsonOpt = False) -> None:
    """Accuracy, macro-F1, per-intent precision/recall and confusions on labelled data."""
    from siyu.kb import service

    env = open_env()
    with env.session() as session:
        report = service.evaluate(session, service.read_file(data), source=str(data))
    if as_json:
        print_json(report)
        return
    console.print(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
                  f"on {report['n']}"
                  f" examples (with out-of-scope rejection: accuracy "
                  f"{report['accuracy_with_oos']:.4f}, {report['rejected_as_oos']} rejected)",
                  highlight=False)
    table = Table("意图", "precision", "recall", "F1", "support")
    for name, s in sorted(report["per_intent"].items()):
        table.add_row(name, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}",
                      str(s["support"]))
    console.print(table)
    confusions = report.get("confusions") or []
    if confusions:
        console.print("most frequent confusions (true → predicted):")
        for c in confusions[:10]:
            console.print(f"  {c}", highlight=False)


@nlu_app.command("predict")
@handle_errors
def predict(text: Annotated[str, typer.Argument(help="a customer message")],
            as_json: JsonOpt = False) -> None:
    """The intent of one message, with confidence and alternatives."""
    from siyu.kb import service

    env = open_env()
    with env.session() as session:
        runtime = service.load_runtime(session)
        if not runtime.trained:
            service._classifier(session)  # raises the "train first" error
        p = runtime.classify(text)
    result = {"intent": p.intent, "confidence": round(p.confidence, 4),
              "out_of_scope": p.out_of_scope,
              "alternatives": [{"intent": n, "confidence": round(c, 4)}
                               for n, c in p.alternatives]}
    if as_json:
        print_json(result)
        return
    label = p.intent if p.intent else "（超出范围 out of scope）"
    console.print(f"{label}  confidence {p.confidence:.3f}", highlight=False)
    for n, c in p.alternatives:
        console.print(f"  {n:<30} {c:.3f}", highlight=False)
