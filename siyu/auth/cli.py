"""``siyu apikey`` and ``siyu user``: API keys and staff users."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

import typer

from siyu.auth import secrets as secrets_
from siyu.auth import service, users
from siyu.auth import sessions as auth_sessions
from siyu.auth.models import API_SCOPES, ROLES
from siyu.db import utcnow
from siyu.kit.cli import console, err_console, handle_errors, open_env, print_json

apikey_app = typer.Typer(help="Manage API keys (bearer tokens for /api/v1).",
                         no_args_is_help=True)
user_app = typer.Typer(help="Manage console users (roles: admin, operator, agent, analyst).",
                       no_args_is_help=True)


@apikey_app.command("create")
@handle_errors
def apikey_create(
    name: Annotated[str, typer.Argument(help="what the key is for")],
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="repeatable: " + " | ".join(API_SCOPES) + " (default: full access)")
    ] = None,
    expires: Annotated[str | None, typer.Option(
        help="90d, 12h, 2w from now, or a date 2027-03-01 (00:00 UTC); default: never")
    ] = None,
) -> None:
    """Create an API key. The key is printed once, alone on the last line."""
    from siyu.privacy import service as privacy
    from siyu.privacy.cli import cli_actor

    env = open_env()
    expires_at = service.parse_expiry(expires) if expires is not None else None
    with env.session() as session:
        new = service.create_api_key(session, name, scope or None, expires_at)
        privacy.record_audit(session, actor=cli_actor(), action="apikey.create",
                             target=f"api_key:{new.id}",
                             detail={"name": new.name, "scopes": list(new.scopes or ["*"]),
                                     "expires_at": expires_at.isoformat() if expires_at
                                     else None})
    if new.scopes is None:
        err_console.print("note: no --scope given, so this key has full access (admin); "
                          f"narrow it with --scope {' / --scope '.join(API_SCOPES)}",
                          highlight=False)
    console.print(f"API key #{new.id} '{new.name}' created "
                  f"(scopes: {' '.join(new.scopes) if new.scopes else 'full access'}; "
                  f"expires: {expires_at.isoformat() if expires_at else 'never'}). "
                  "Store it now; it is not shown again:", highlight=False)
    print(new.key)


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@apikey_app.command("list")
@handle_errors
def apikey_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List API keys (prefixes only) with their scopes, expiry and last use."""
    env = open_env()
    now = utcnow()
    with env.session() as session:
        rows = [{"id": k.id, "name": k.name, "prefix": k.prefix,
                 "scopes": list(k.scope_list) if k.scope_list is not None else None,
                 "created_at": k.created_at.isoformat(),
                 "expires_at": _when(k.expires_at), "last_used_at": _when(k.last_used_at),
                 "revoked_at": _when(k.revoked_at),
                 "state": "revoked" if k.revoked_at else
                 "expired" if k.expires_at and k.expires_at <= now else "active"}
                for k in service.list_api_keys(session)]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        scope_list = r["scopes"]
        scopes = " ".join(scope_list) if isinstance(scope_list, list) else "full access"
        console.print(f"#{r['id']}  {r['prefix']}…  {r['name']}  {r['state']}  [{scopes}]  "
                      f"expires {r['expires_at'] or 'never'}  "
                      f"last used {r['last_used_at'] or 'never'}", highlight=False)


@apikey_app.command("revoke")
@handle_errors
def apikey_revoke(key_id: int) -> None:
    """Revoke an API key by id; it is refused from the next request on."""
    from siyu.privacy import service as privacy
    from siyu.privacy.cli import cli_actor

    env = open_env()
    with env.session() as session:
        key = service.revoke_api_key(session, key_id)
        privacy.record_audit(session, actor=cli_actor(), action="apikey.revoke",
                             target=f"api_key:{key.id}", detail={"name": key.name})
    console.print(f"API key #{key_id} revoked")


@user_app.command("create")
@handle_errors
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help=" | ".join(ROLES))] = "admin",
    password: Annotated[str | None, typer.Option(help="default: a random one, printed")] = None,
    display_name: Annotated[str | None, typer.Option(help="shown in the console")] = None,
) -> None:
    """Create a console user."""
    env = open_env()
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    with env.session() as session:
        user = users.create(session, _actor(), username, password, role, display_name)
    console.print(f"user '{user.username}' ({user.role}) created", highlight=False)
    if generated:
        console.print(f"password: {password}", highlight=False)


@user_app.command("set-password")
@handle_errors
def user_set_password(
    username: str,
    password: Annotated[str | None, typer.Option(help="default: a random one, printed")] = None,
) -> None:
    """Reset a console user's password."""
    env = open_env()
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    with env.session() as session:
        users.change_password(session, _actor(), username, password)
    console.print(f"password of '{username}' changed; their sessions ended", highlight=False)
    if generated:
        console.print(f"password: {password}", highlight=False)


def _actor() -> str:
    from siyu.privacy.cli import cli_actor

    return cli_actor()


@user_app.command("list")
@handle_errors
def user_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List console users: role, status, last sign-in, live sessions, second factor."""
    env = open_env()
    with env.session() as session:
        rows = [r.as_dict() for r in users.overview(session, env.settings)]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"#{r['id']}  {r['username']}  {r['display_name']}  {r['role']}"
                      f"{'' if r['active'] else '  (disabled)'}  sessions: {r['sessions']}"
                      f"{'  2FA' if r['mfa'] else ''}  last login: {r['last_login_at'] or '-'}",
                      highlight=False)


@user_app.command("disable")
@handle_errors
def user_disable(username: str) -> None:
    """Refuse the user's sign-ins and end their sessions at once."""
    env = open_env()
    with env.session() as session:
        users.disable(session, _actor(), username)
    console.print(f"user '{username}' disabled; their sessions ended", highlight=False)


@user_app.command("enable")
@handle_errors
def user_enable(username: str) -> None:
    """Let a disabled user sign in again."""
    env = open_env()
    with env.session() as session:
        users.enable(session, _actor(), username)
    console.print(f"user '{username}' enabled", highlight=False)


@user_app.command("set-role")
@handle_errors
def user_set_role(username: str,
                  role: Annotated[str, typer.Argument(help=" | ".join(ROLES))]) -> None:
    """Change a user's role; their sessions end (they sign in again with the new role)."""
    env = open_env()
    with env.session() as session:
        users.set_role(session, _actor(), username, role)
    console.print(f"user '{username}' is now {role}; their sessions ended", highlight=False)


@user_app.command("sessions")
@handle_errors
def user_sessions(username: str,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The user's live console sessions."""
    env = open_env()
    with env.session() as session:
        user = users.by_name(session, username)
        rows = [{"id": s.id, "created_at": s.created_at.isoformat(),
                 "last_seen_at": s.last_seen_at.isoformat(),
                 "expires_at": s.expires_at.isoformat(), "ip": s.ip,
                 "user_agent": s.user_agent}
                for s in auth_sessions.list_for(session, env.settings, user.id)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"'{username}' has no live sessions", highlight=False)
    for r in rows:
        console.print(f"#{r['id']}  since {r['created_at']}  last seen {r['last_seen_at']}  "
                      f"from {r['ip'] or '-'}", highlight=False)


@user_app.command("revoke")
@handle_errors
def user_revoke(
    username: str,
    session_id: Annotated[int | None, typer.Option("--session", help="one session's id "
                                                   "(default: all of them)")] = None,
) -> None:
    """End the user's console sessions (all, or one with --session)."""
    env = open_env()
    with env.session() as session:
        ended = users.revoke(session, _actor(), username, session_id)
    console.print(f"{ended} session(s) of '{username}' ended", highlight=False)


@user_app.command("unlock")
@handle_errors
def user_unlock(
    username: str,
    address: Annotated[str | None, typer.Option(help="also clear this client address")] = None,
) -> None:
    """Clear a sign-in lock after too many failures (works for any name, so the last
    administrator can always get back in from the server's shell)."""
    env = open_env()
    with env.session() as session:
        users.unlock(session, env.settings, _actor(), username, address=address)
    console.print(f"sign-in lock of '{username}' cleared", highlight=False)


@user_app.command("mfa-reset")
@handle_errors
def user_mfa_reset(username: str) -> None:
    """Remove a user's second factor (a lost phone); they enrol again if it is required."""
    env = open_env()
    with env.session() as session:
        had = users.reset_mfa(session, _actor(), username)
    console.print(f"second factor of '{username}' {'removed' if had else 'was not set'}",
                  highlight=False)


secret_app = typer.Typer(help="The install's secret keys (kept beside the data; never shown).",
                         no_args_is_help=True)


@secret_app.command("rotate")
@handle_errors
def secret_rotate(
    purpose: Annotated[str, typer.Argument(help="which key: " + ", ".join(secrets_.ROTATABLE))
                       ] = "session",
) -> None:
    """Replace one purpose's key. Rotating 'session' signs everyone out of the console;
    the keys that stored data depends on (do-not-contact hashes, second factors, signed
    links, chat codes) are never rotated."""
    env = open_env()
    generation = secrets_.rotate(env.settings, purpose, engine=env.engine)
    if purpose == "session":
        with env.session() as session:
            auth_sessions.end_everyone(session)
    console.print(f"'{purpose}' key rotated (generation {generation}): "
                  f"{secrets_.ROTATABLE[purpose]}; running servers follow within "
                  f"{secrets_.REFRESH_SECONDS:.0f} s", highlight=False)


@secret_app.command("status")
@handle_errors
def secret_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the install's secrets are kept and each rotatable key's generation."""
    env = open_env()
    ring = secrets_.keyring(env.settings, env.engine)
    generations = {p: ring.generation(p) for p in secrets_.ROTATABLE}
    if as_json:
        print_json({"source": ring.source, "generations": generations})
        return
    console.print(f"kept in: {ring.source}", highlight=False)
    for purpose, generation in generations.items():
        console.print(f"  {purpose}: generation {generation}", highlight=False)
