"""Applications and their bot users. Bot tokens and client secrets are shown once, kept hashed."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from service import accounts, attachments, audit, events, guilds, members, roles, serializers, storage
from service.access import guild_access, load_member_access
from service.audit import Action
from service.auth import Identity
from service.crypto import new_bot_token, new_secret, sha256_hex
from service.errors import APIError, field_error, not_found
from service.models import Application, Guild, Member, MemberRole, Message, User
from service.permissions import Permission
from service.users import me, parse_snowflake

MAX_APPLICATIONS = 25
BOT_SCOPE = "bot"
# Scopes accepted beside ``bot``; they grant nothing more here. Plain OAuth2 grants are not served.
BOT_COMPANION_SCOPES = frozenset({"applications.commands"})


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


def remove(rt, session, identity: Identity, application_id: str) -> None:
    app, bot_user = _owned(session, identity, application_id)
    # The bot leaves its guilds the ordinary way first: counts, its managed roles and events stay right.
    for guild in session.scalars(select(Guild).join(Member, Member.guild_id == Guild.id)
                                 .where(Member.user_id == bot_user.id)).all():
        members.remove(rt, session, guild, bot_user.id, identity.user_id)
    session.delete(app)
    # The bot's messages go with its user (ON DELETE CASCADE), and their files after the commit.
    storage.delete_after_commit(session, *attachments.storage_keys_of(session, Message.author_id == bot_user.id))
    session.execute(delete(User).where(User.id == bot_user.id))
    events.end_logins(session, bot_user.id)
    session.commit()


def reset_bot_token(rt, session, identity: Identity, application_id: str, body: dict) -> dict:
    app, bot_user = _owned(session, identity, application_id)
    accounts.verify_sudo(rt, session, me(session, identity), body)
    token = new_bot_token(bot_user.id)
    app.bot_token_hash = sha256_hex(token)  # the old token stops matching at once
    events.end_logins(session, bot_user.id)
    session.commit()
    bot = serializers.bot.dump(bot_user)
    bot["token"] = token
    return {"token": token, "bot": bot}


# --- Adding a bot to a guild (OAuth2 consent with the bot scope) ----------------------------


def _redirect_to(rt, app: Application, body: dict, guild_id: int, permissions: int) -> str:
    params = {"guild_id": str(guild_id), "permissions": str(permissions)}
    if body.get("state"):
        params["state"] = body["state"]
    redirect_uri = body.get("redirect_uri")
    if redirect_uri:
        if redirect_uri not in (app.redirect_uris or []):
            raise field_error("redirect_uri", "INVALID_REDIRECT_URI", "Not one of the application's redirect URIs")
        parts = urlsplit(redirect_uri)
        query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    params["application_id"] = str(app.id)
    return f"{rt.settings.public_url}/oauth2/authorized?{urlencode(params)}"


def consent(rt, session, identity: Identity, body: dict) -> dict:
    """Authorize ``client_id``: with the ``bot`` scope, its bot joins ``guild_id`` with a managed role."""
    scopes = set(body["scope"].split())
    if BOT_SCOPE not in scopes or scopes - BOT_COMPANION_SCOPES - {BOT_SCOPE}:
        raise APIError(400, "INVALID_SCOPE", "Only the bot scope (optionally with applications.commands) is supported")
    caller = me(session, identity)
    if caller.bot:
        raise APIError(403, "FORBIDDEN", "Bots cannot authorize applications")
    app = session.get(Application, parse_snowflake(body["client_id"], "application", "UNKNOWN_APPLICATION"))
    if app is None:
        raise not_found("UNKNOWN_APPLICATION", "application")
    if not app.bot_public and app.owner_id != caller.id:
        raise APIError(403, "BOT_IS_PRIVATE", "Only the owner of this application can add its bot")
    if body.get("guild_id") is None:
        raise field_error("guild_id", "BASE_TYPE_REQUIRED", "The bot scope needs a guild")
    access = guild_access(session, identity, body["guild_id"])
    access.require(Permission.MANAGE_GUILD)
    permissions = roles.parse_permissions(body.get("permissions", 0))
    access.require_grantable(permissions)
    guild = access.guild
    bot_user = session.get(User, app.bot_user_id)
    if bot_user is None:
        raise not_found("BOT_APPLICATION_NOT_FOUND", "bot application")
    if session.get(Member, (guild.id, bot_user.id)) is not None:
        raise APIError(400, "BOT_ALREADY_IN_GUILD", "This bot is already in the guild")
    redirect_to = _redirect_to(rt, app, body, guild.id, permissions)

    already = APIError(400, "BOT_ALREADY_IN_GUILD", "This bot is already in the guild")
    try:  # refuses a banned bot; publishes GUILD_MEMBER_ADD
        member = members.add(rt, session, guild, bot_user)
    except IntegrityError:  # a concurrent consent added it a moment ago
        session.rollback()
        raise already from None
    if member is None:
        raise already
    # The managed role starts just above @everyone, like any new role; it is the bot's alone.
    role = roles.add_lowest(rt, session, guild.id, name=bot_user.username[:100], color=0, permissions=permissions,
                            hoist=False, mentionable=False, bot_user_id=bot_user.id)
    session.execute(insert(MemberRole).values(guild_id=guild.id, user_id=bot_user.id, role_id=role.id))
    role_data = serializers.role.dump(role)
    audit.record(rt, session, guild.id, caller.id, Action.BOT_ADD, bot_user.id,
                 options={"application_id": str(app.id), "permissions": str(permissions)})
    audit.record(rt, session, guild.id, caller.id, Action.ROLE_CREATE, role.id, changes=audit.diff({}, role_data))
    events.publish(session, "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role_data}, guild_id=guild.id)
    events.publish(session, "GUILD_MEMBER_UPDATE",
                   {**members.dump(session, member, bot_user, [role.id]), "guild_id": str(guild.id)},
                   guild_id=guild.id)
    session.refresh(guild)
    events.publish(session, "GUILD_CREATE", guilds.full_state(session, load_member_access(session, guild, member)),
                   user_ids=[bot_user.id])
    session.commit()
    return {"redirect_to": redirect_to}
