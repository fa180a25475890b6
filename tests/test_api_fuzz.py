"""Schemathesis against the OpenAPI spec: every operation, a few examples each, on the real
app and a small demo brand, with a full-access API key. Fails on any 500, on any status the
operation does not document (a 502/503 passes only where documented), on an undocumented
media type, and on a response that does not match its documented model.

``SIYU_FUZZ_EXAMPLES`` sets the fuzzing phase's examples per operation (default 5; the
examples and coverage phases run in full whatever it is). ``SIYU_FUZZ_REPORT=1`` prints the
number of cases and the statuses seen per operation when the module ends.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.auth.service import create_api_key
from siyu.channels.config import ChannelSettings
from siyu.config import Settings
from siyu.customers.models import Customer, Merge, MergeConflict, Tag
from siyu.db import make_session_factory
from siyu.demo.generator import seed_demo
from siyu.playbooks import service as playbooks
from siyu.segments import service as segments
from siyu.service.demo import seed_agents, seed_service_history
from siyu.service.models import Conversation
from siyu.voc.demo import seed_demo_voc
from siyu.voc.models import Survey
from tests.conftest import empty_all_tables

NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
MAX_EXAMPLES = int(os.environ.get("SIYU_FUZZ_EXAMPLES", "5"))
# The full budget runs on SQLite; on PostgreSQL (the suite's second run) the coverage phase
# sends only schema-valid values, the ones that reach the database's own types (its
# negative half, wrong types and missing fields, stops in validation the same way on both).
ON_POSTGRESQL = os.environ.get("SIYU_TEST_DATABASE_URL", "").startswith("postgresql")

CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance,
          st_checks.content_type_conformance, st_checks.response_schema_conformance]
CONFIG = {
    "seed": 20261203,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    "phases": {"stateful": {"enabled": False},
               # Not the probes of methods an operation lacks (the router's 405, ~7 cases
               # per operation): the budget goes to the parameters and bodies.
               "coverage": {"unexpected-methods": [],
                            **({"generation": {"mode": "positive"}} if ON_POSTGRESQL else {})}},
    # A 500 always fails; a 502/503 passes this check only to meet status_code_conformance,
    # which fails it unless the operation documents it (an unconfigured channel: 503).
    "checks": {"not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", "502", "503"]}},
}

# The spec is the app's whatever its database: read from an app on an in-memory database at
# import (schemathesis parametrises at collection); the cases run against ``fuzz_app``.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(environment="test", database_url="sqlite://")),
    config=SchemathesisConfig.from_dict(CONFIG))

SEEN: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
SECONDS: collections.Counter[str] = collections.Counter()
PHASES: collections.Counter[str] = collections.Counter()


PLAYBOOK = """\
name: 生日关怀
status: active
trigger: {event: birthday_soon}
holdout: 0.2
steps:
  - send: {channel: sms, purpose: marketing, template: "{{ customer.name }}，生日快乐"}
"""


def _seed(sessions: sessionmaker[Session], settings: Settings) -> dict[tuple[str, str], list[Any]]:
    """A small demo brand (100 customers, their orders, events, merges and conflicts), a
    service history, surveys, a playbook and segments; answers the values of path parameters
    that name its rows, by (operation path, parameter)."""
    seed_demo(sessions, settings, customers=100, seed=11, now=NOW)
    with sessions() as session:
        seed_agents(session)
        seed_service_history(session, now=NOW, conversations=20)
        seed_demo_voc(session, now=NOW, responses=200)
        playbooks.apply(session, PLAYBOOK, file="fuzz.yaml")
        kept, doomed = (segments.create_segment(session, name, "orders(last 365d) >= 1",
                                                created_by="fuzz").id
                        for name in ("fuzz", "fuzz-delete"))
        session.commit()
        customers = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        real: dict[tuple[str, str], list[Any]] = {
            ("*", "customer_id"): customers[:-1],
            ("*", "tag"): list(session.scalars(select(Tag.name))),
            ("*", "merge_id"): list(session.scalars(select(Merge.id))),
            ("*", "conflict_id"): list(session.scalars(select(MergeConflict.id))),
            ("*", "conversation_id"): list(session.scalars(select(Conversation.id))),
            ("*", "segment_id"): [kept],
            ("/api/v1/playbooks/", "name"): ["生日关怀"],
            ("/api/v1/voc/surveys/", "name"): list(session.scalars(select(Survey.name))),
            # Erasure and deletion get rows of their own: the other operations keep theirs.
            ("/api/v1/customers/{customer_id}/erase", "customer_id"): customers[-1:],
            ("/api/v1/segments/{segment_id}#DELETE", "segment_id"): [doomed],
        }
    return real


REAL: dict[tuple[str, str], list[Any]] = {}


def _real_values(path: str, method: str, name: str) -> list[Any]:
    for (where, param), values in REAL.items():
        if param == name and where not in ("*",) and (
                where in (path, f"{path}#{method}") or (where.endswith("/")
                                                        and path.startswith(where))):
            return values
    return REAL.get(("*", name), [])


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the generated ids and names are swapped for ones that name seeded rows, so that
    operations reach their real work and not only their 404 (generated ids seldom exist)."""
    op = context.operation
    swaps = {name: values for name in path_parameters or {}
             if (values := _real_values(op.path, op.method.upper(), name))}
    if not swaps:
        return st.just(path_parameters)
    real = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in swaps.items()})
    return st.one_of(st.just(path_parameters), real.map(lambda d: {**path_parameters, **d}))


@pytest.fixture(scope="module")
def fuzz_app(engine: Engine, database_url: str) -> Iterator[FastAPI]:
    """The app on the seeded brand, its channels configured so that callbacks reach their
    signature checks, with a full-access API key."""
    empty_all_tables(engine)
    settings = Settings(database_url=database_url, environment="test")
    sessions = make_session_factory(engine)
    REAL.update(_seed(sessions, settings))
    with sessions() as session:
        key = create_api_key(session, "fuzz").key
        session.commit()
    app = create_app(settings, engine=engine)
    app.state.channel_settings = ChannelSettings(
        phone_secret=SecretStr("fuzz-phone-secret-0123456789"),
        sms_webhook_secret=SecretStr("fuzz-sms-secret-0123456789"))
    app.state.fuzz_key = key
    yield app
    REAL.clear()
    empty_all_tables(engine)
    if os.environ.get("SIYU_FUZZ_REPORT") and SEEN:
        total = sum(sum(c.values()) for c in SEEN.values())
        print(f"\nfuzz: {len(SEEN)} operations, {total} cases, "
              f"{sum(SECONDS.values()):.1f} s in the app; by phase {dict(PHASES)}",
              file=sys.__stderr__)
        for label, counter in sorted(SEEN.items()):
            print(f"  {label}: {dict(sorted(counter.items()))} {SECONDS[label]:.2f} s",
                  file=sys.__stderr__)


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any, fuzz_app: FastAPI) -> None:
    started = time.perf_counter()
    response = case.call(headers={"Authorization": f"Bearer {fuzz_app.state.fuzz_key}"},
                         app=fuzz_app)
    SEEN[case.operation.label][response.status_code] += 1
    SECONDS[case.operation.label] += time.perf_counter() - started
    meta = getattr(case, "_meta", None)
    PHASES[meta.phase.name.value if meta else "?"] += 1
    case.validate_response(response, checks=CHECKS)


def test_the_spec_documents_errors_callbacks_and_the_csv_export() -> None:
    """Without running the fuzz: a new /api/v1 router that forgets API_ERRORS, a callback
    that forgets NO_BEARER or its 503, fail here at once."""
    spec = schema.raw_schema
    assert spec["security"] == [{"bearer": []}]
    error = {"$ref": "#/components/schemas/ErrorOut"}
    operations = [(path, method, op) for path, ops in spec["paths"].items()
                  for method, op in ops.items()]
    assert len(operations) > 50
    for path, method, op in operations:
        responses = op["responses"]
        if path.startswith("/api/v1/"):
            for status in ("401", "403", "404", "422"):
                assert responses[status]["content"]["application/json"]["schema"] == error, (
                    method, path, status)
            assert "security" not in op, (method, path)  # the bearer key
        else:
            assert path.startswith("/channels/"), path
            assert op["security"] == [], (method, path)  # platforms sign; no bearer key
            assert "503" in responses, (method, path)  # the channel is not configured
    csv_export = spec["paths"]["/api/v1/segments/{segment_id}/export.csv"]["get"]
    assert list(csv_export["responses"]["200"]["content"]) == ["text/csv"]


class Shape(BaseModel):
    name: str


def _toy_app() -> FastAPI:
    toy = FastAPI()

    @toy.get("/boom", response_model=None,
             responses={200: {"model": Shape}, 404: {"description": "missing"}})
    def boom(kind: str) -> JSONResponse:
        statuses = {"error": 500, "teapot": 418, "busy": 503, "shape": 200}
        if kind in statuses:  # "shape": a 200 whose body is not a Shape
            return JSONResponse({"x": 1}, status_code=statuses[kind])
        raise RuntimeError("boom")

    return toy


@pytest.mark.parametrize("kind", ["crash", "error", "teapot", "busy", "shape"])
def test_the_checks_fail_on_a_500_an_undocumented_status_and_a_wrong_shape(kind: str) -> None:
    """The run above would pass on anything if the checks did not bite: they fail on an
    exception, a 500, a 418 or a 503 the operation does not document, a body off its model."""
    toy = _toy_app()
    toy_schema = schemathesis.openapi.from_asgi("/openapi.json", toy,
                                                config=SchemathesisConfig.from_dict(CONFIG))
    case = toy_schema["/boom"]["GET"].Case(query={"kind": kind})
    if kind == "crash":
        with pytest.raises(RuntimeError):  # the test client re-raises the app's exception
            case.call(app=toy)
        return
    response = case.call(app=toy)
    with pytest.raises(FailureGroup):
        case.validate_response(response, checks=CHECKS)
