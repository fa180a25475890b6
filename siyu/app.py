"""The application factory: one FastAPI app serving the API, the console and channels."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError

from siyu import __version__
from siyu.analytics import api as analytics_api
from siyu.analytics import console as analytics_console
from siyu.appointments import api as appointments_api
from siyu.appointments import console as appointments_console
from siyu.auth import console as auth_console
from siyu.auth import secrets, users_console
from siyu.auth.web import KeyedSessionMiddleware
from siyu.channels import api as channels_api
from siyu.channels.api import CALLBACK_BODY_LIMITS
from siyu.channels.phone import console as phone_console
from siyu.config import Settings, get_settings
from siyu.content import api as content_api
from siyu.content import console as content_console
from siyu.customers import api as customers_api
from siyu.customers import console as customers_console
from siyu.customers.schemas import CustomerIn
from siyu.db import make_engine, make_session_factory
from siyu.errors import InvalidInput, SiyuError
from siyu.events import api as events_api
from siyu.events.schemas import EventIn, OrderIn
from siyu.groups import api as groups_api
from siyu.groups import console as groups_console
from siyu.journeys import api as journeys_api
from siyu.kb import console as kb_console
from siyu.kit.openapi import ErrorOut
from siyu.kit.validation import field_errors
from siyu.kit.web import AccessLog, BodySizeLimit, CallbackBodyLimit, SecurityHeaders
from siyu.playbooks import api as playbooks_api
from siyu.playbooks import console as playbooks_console
from siyu.points import api as points_api
from siyu.points import console as points_console
from siyu.privacy import api as privacy_api
from siyu.privacy import console as privacy_console
from siyu.referrals import api as referrals_api
from siyu.referrals import config as referrals_config
from siyu.referrals import console as referrals_console
from siyu.segments import api as segments_api
from siyu.segments import console as segments_console
from siyu.service import api as service_api
from siyu.service import console as service_console
from siyu.voc import api as voc_api
from siyu.voc import console as voc_console

log = logging.getLogger("siyu")

# Routers of each domain, mounted in this order. Domains add theirs here.
ROUTERS = [auth_console.router, users_console.router, customers_api.router, events_api.router,
           segments_api.router,
           segments_console.router,
           channels_api.router, analytics_api.router, analytics_console.router,
           service_api.router, service_console.router, phone_console.router, kb_console.router,
           customers_console.router, privacy_api.router, privacy_console.router,
           playbooks_api.router, playbooks_console.router, voc_api.page_router, voc_api.router,
           voc_console.router,
           journeys_api.router, referrals_api.router, appointments_api.router,
           appointments_api.ics_router, points_api.router, appointments_console.router,
           points_console.router, content_api.links, content_api.router,
           content_console.router, groups_api.router, groups_console.router,
           referrals_api.report_router,
           referrals_console.router]
# Models documented in the OpenAPI components though routes read them from raw JSON.
DOCUMENTED_MODELS: list[type[BaseModel]] = [CustomerIn, OrderIn, EventIn, ErrorOut]


SERVE_JOBS_ENV = "SIYU_SERVE_JOBS"


def app_from_environment() -> FastAPI:
    """The app as each process of ``siyu serve --workers N`` builds it: settings from the
    environment, and the job loop when ``SIYU_SERVE_JOBS`` is ``1`` (jobs are claimed
    safely, so every process may run one)."""
    return create_app(get_settings(), run_worker=os.environ.get(SERVE_JOBS_ENV) == "1")


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, run_worker: bool = False
) -> FastAPI:
    """Build the app. Tests pass their own settings and engine; nothing is created at import.

    With ``run_worker`` the background-job loop runs in a thread for the app's lifetime
    (``siyu serve`` does this by default; ``siyu worker`` runs it as its own process).
    """
    settings = settings or get_settings()
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        stop = None
        if run_worker:
            from siyu.jobs.worker import start_in_thread

            thread, stop = start_in_thread(app_.state.sessions)
        yield
        if stop is not None:
            stop.set()
            thread.join(timeout=10)
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="siyu API",
        version=__version__,
        description="私域客户平台 API: customers, orders, events and more. "
        "Authenticate with 'Authorization: Bearer <API key>' (siyu apikey create NAME).",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)

    # Fail at start-up, not at the first request, when the install's secrets are unreadable.
    secrets.keyring(settings, engine)
    # ... and when a referral rule has a bad value (not at the first order).
    referrals_config.check()
    app.add_middleware(
        KeyedSessionMiddleware,
        key=lambda: secrets.purpose_key(settings, "session", engine=engine),
        session_cookie="siyu_session",
        same_site="lax",
        https_only=settings.environment == "production",
        max_age=12 * 3600,
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(CallbackBodyLimit, limits=CALLBACK_BODY_LIMITS)
    app.add_middleware(SecurityHeaders, embed_origins=settings.chat_embed_origin_list)
    app.add_middleware(AccessLog)

    @app.exception_handler(SiyuError)
    async def _siyu_error(_: Request, exc: SiyuError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query",
                                                                            "path"))
            details.append({"field": loc or "(request)", "reason": err.get("msg", "invalid")})
        return JSONResponse(
            {"error": "invalid_input",
             "message": "; ".join(f"{d['field']}: {d['reason']}" for d in details),
             "details": details},
            status_code=422,
        )

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _number_out_of_range(request: Request, exc: Exception) -> Any:
        # A number in the URL beyond the 64-bit columns (``/customers/99999999999999999999``)
        # reaches the database as an overflow (SQLite: OverflowError; PostgreSQL: numeric
        # value out of range). It names nothing that exists: answer as the input error it is,
        # through whichever SiyuError handler is installed (the console renders its page).
        if isinstance(exc, DataError) and not _is_numeric_overflow(exc):
            raise exc
        handler = request.app.exception_handlers[SiyuError]
        return await handler(request, NumberOutOfRange(
            "a number in the request is out of range (at most 2^63-1)",
            details=[{"field": "(request)", "reason": "number out of range"}]))

    for router in ROUTERS:
        app.include_router(router)
    _mount_optional(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in DOCUMENTED_MODELS:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        schema["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class NumberOutOfRange(InvalidInput):
    code = "number_out_of_range"


def _is_numeric_overflow(exc: DataError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "22003"  # numeric_value_out_of_range


def _mount_optional(app: FastAPI) -> None:
    """Mount the console (and later domains' web parts) that import heavier modules."""
    from siyu.console.routes import mount as mount_console

    mount_console(app)


__all__ = ["create_app", "field_errors"]
