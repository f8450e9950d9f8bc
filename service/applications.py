"""Applications and their bot users. Bot tokens and client secrets are shown once, kept hashed."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from service import accounts, serializers
from service.auth import Identity
from service.crypto import new_bot_token, new_secret, sha256_hex
from service.errors import APIError, not_found
from service.models import Application, User
from service.users import me, parse_snowflake

MAX_APPLICATIONS = 25


def _owned(session, identity: Identity, application_id: str) -> tuple[Application, User]:
    """Another person's application is as invisible as a missing one: 404, never 403."""
    app = session.get(Application, parse_snowflake(application_id, "application", "UNKNOWN_APPLICATION"))
    if app is None or app.owner_id != identity.user_id:
        raise not_found("UNKNOWN_APPLICATION", "application")
    return app, session.get(User, app.bot_user_id)


def create(rt, session, identity: Identity, body: dict) -> dict:
    owner = me(session, identity)
    if owner.bot:
        raise APIError(403, "FORBIDDEN", "Bots cannot create applications")
    count = session.scalar(select(func.count()).select_from(Application).where(Application.owner_id == owner.id))
    if count >= MAX_APPLICATIONS:
        raise APIError(400, "MAX_APPLICATIONS", f"Maximum number of applications reached ({MAX_APPLICATIONS})")
    name = body["name"].strip() or "Application"
    bot_name = accounts.username_from(name)
    bot_user = User(id=rt.new_id(), username=bot_name, username_key=bot_name.lower(),
                    discriminator=accounts.pick_discriminator(session, bot_name), bot=True)
    session.add(bot_user)
    session.flush()
    token, secret = new_bot_token(bot_user.id), new_secret()
    app = Application(
        id=rt.new_id(), owner_id=owner.id, bot_user_id=bot_user.id, name=name,
        redirect_uris=body.get("redirect_uris") or [], bot_public=body.get("bot_public", True),
        bot_require_code_grant=body.get("bot_require_code_grant", False),
        client_secret_hash=sha256_hex(secret), bot_token_hash=sha256_hex(token),
    )
    session.add(app)
    session.commit()
    return serializers.serialize_application(app, bot_user, owner, bot_token=token, client_secret=secret)


def list_mine(session, identity: Identity):
    caller = me(session, identity)
    if caller.bot:
        app = session.scalar(select(Application).where(Application.bot_user_id == caller.id))
        return serializers.serialize_application(app, caller, session.get(User, app.owner_id))
    apps = session.scalars(select(Application).where(Application.owner_id == caller.id).order_by(Application.id))
    return [serializers.serialize_application(app, session.get(User, app.bot_user_id), caller) for app in apps]


def get(session, identity: Identity, application_id: str) -> dict:
    app, bot_user = _owned(session, identity, application_id)
    return serializers.serialize_application(app, bot_user, session.get(User, app.owner_id))


def update(session, identity: Identity, application_id: str, body: dict) -> dict:
    app, bot_user = _owned(session, identity, application_id)
    if "name" in body:
        app.name = body["name"].strip() or app.name
    if "redirect_uris" in body:
        app.redirect_uris = body["redirect_uris"] or []
    for key in ("bot_public", "bot_require_code_grant"):
        if key in body:
            setattr(app, key, body[key])
    session.commit()
    return serializers.serialize_application(app, bot_user, session.get(User, app.owner_id))


def remove(session, identity: Identity, application_id: str) -> None:
    app, bot_user = _owned(session, identity, application_id)
    session.delete(app)
    session.execute(delete(User).where(User.id == bot_user.id))
    session.commit()


def reset_bot_token(rt, session, identity: Identity, application_id: str, body: dict) -> dict:
    app, bot_user = _owned(session, identity, application_id)
    accounts.verify_sudo(rt, session, me(session, identity), body)
    token = new_bot_token(bot_user.id)
    app.bot_token_hash = sha256_hex(token)  # the old token stops matching at once
    session.commit()
    bot = serializers.bot.dump(bot_user)
    bot["token"] = token
    return {"token": token, "bot": bot}
