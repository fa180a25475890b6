"""Rendering a domain's console page: the console's layout and filters overlaid with the
domain's own ``templates/`` folder, the signed-in user's navigation, CSRF token and flash
message, and no caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from siyu.console.nav import nav_for
from siyu.console.routes import StaffUser, csrf_token


def domain_templates(request: Request, folder: Path) -> Jinja2Templates:
    """The console's template environment with ``folder`` searched first (built once per
    app and folder)."""
    cache: dict[str, Jinja2Templates] | None = getattr(request.app.state,
                                                        "domain_templates", None)
    if cache is None:
        cache = {}
        request.app.state.domain_templates = cache
    key = str(folder)
    if key not in cache:
        console_env: jinja2.Environment = request.app.state.console_templates.env
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(folder)]
        if console_env.loader is not None:
            loaders.append(console_env.loader)
        cache[key] = Jinja2Templates(env=console_env.overlay(loader=jinja2.ChoiceLoader(loaders)))
    return cache[key]


def render(request: Request, user: StaffUser, folder: Path, name: str,
           context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """Template ``name`` from ``folder`` with the console's common context."""
    base = {"user": user, "nav": nav_for(user.role, request.url.path),
            "csrf_token": csrf_token(request), "flash": request.session.pop("flash", None)}
    response = domain_templates(request, folder).TemplateResponse(
        request, name, {**base, **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response
