"""``siyu channels ...``: web chat tokens for integrators."""

from __future__ import annotations

from typing import Annotated

import typer

from siyu.channels.config import get_channel_settings
from siyu.channels.webchat.tokens import mint_token
from siyu.config import get_settings
from siyu.customers.errors import InvalidIdentity
from siyu.customers.identity import normalize_identity
from siyu.errors import InvalidInput
from siyu.kit.cli import console, handle_errors, print_json

app = typer.Typer(help="Channels: WeCom and web chat.", no_args_is_help=True)


@app.command("webchat-token")
@handle_errors
def webchat_token(
    phone: Annotated[str | None, typer.Option(help="the customer's phone number")] = None,
    external_id: Annotated[str | None, typer.Option(help="the brand's customer id")] = None,
    app_user_id: Annotated[str | None, typer.Option(help="the brand app's user id")] = None,
    email: Annotated[str | None, typer.Option(help="the customer's e-mail")] = None,
    name: Annotated[str | None, typer.Option(help="name shown in the chat header")] = None,
    ttl: Annotated[int, typer.Option(help="seconds the token stays valid")] = 3600,
    base_url: Annotated[str, typer.Option(help="where siyu is served")] =
    "http://127.0.0.1:8000",
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Mint a signed web chat token (HS256 JWT with SIYU_WEBCHAT_SECRET), as a brand's server
    would, and print it with the chat URL that uses it."""
    cs = get_channel_settings()
    given = {k: v for k, v in (("phone", phone), ("external_id", external_id),
                               ("app_user_id", app_user_id), ("email", email)) if v}
    if not given:
        raise InvalidInput("give at least one identity: --phone, --external-id, "
                           "--app-user-id or --email")
    if not 60 <= ttl <= cs.webchat_token_max_seconds:
        raise InvalidInput(f"--ttl must be between 60 and {cs.webchat_token_max_seconds} s")
    region = get_settings().default_phone_region
    identities = {}
    for kind, value in given.items():
        try:
            identities[kind] = normalize_identity(kind, value, region)
        except InvalidIdentity as exc:
            raise InvalidInput(f"--{kind.replace('_', '-')}: {exc.message}") from None
    token = mint_token(cs.webchat_secret.get_secret_value(), identities, ttl_seconds=ttl,
                       name=name)
    url = f"{base_url.rstrip('/')}/chat?token={token}"
    if json_output:
        print_json({"token": token, "url": url, "expires_in": ttl, "identities": identities})
        return
    console.print(token, highlight=False, soft_wrap=True)
    console.print(f"chat: {url}", highlight=False, soft_wrap=True)
