"""Every guild, channel, role, member, invite, ban, emoji and sticker operation, tried three ways:
by a stranger (404, learns nothing), by a member without the permission (403, changes nothing)
and by a member holding exactly that permission through a role (success).
"""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import dataclass, field

from PIL import Image

from service.permissions import Permission as P
from tests.conftest import PASSWORD

OWNER_ONLY = "owner"  # not grantable by any permission, not even ADMINISTRATOR
ERROR_KEYS = {"code", "message", "error", "errors", "permissions"}


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGBA", (32, 32), (200, 80, 40, 255)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Case:
    operation: str
    method: str
    path: str  # placeholders: guild, channel, role, victim, invite, emoji, sticker, banned
    permission: P | str | None  # None: any member may
    body: dict | list | None = None
    success: int = 200
    extra: dict = field(default_factory=dict)


IMAGE = _png()
CASES = [
    Case("get_guild", "GET", "/guilds/{guild}", None),
    Case("update_guild", "PATCH", "/guilds/{guild}", P.MANAGE_GUILD, {"name": "Renamed"}),
    Case("delete_guild", "POST", "/guilds/{guild}/delete", OWNER_ONLY, {"password": PASSWORD}, 204),
    Case("transfer_guild_ownership", "POST", "/guilds/{guild}/transfer-ownership", OWNER_ONLY,
         {"new_owner_id": "{victim}", "password": PASSWORD}),
    Case("get_guild_vanity_url", "GET", "/guilds/{guild}/vanity-url", P.MANAGE_GUILD),
    Case("update_guild_vanity_url", "PATCH", "/guilds/{guild}/vanity-url", P.MANAGE_GUILD, {"code": "{vanity}"}),
    Case("list_guild_audit_logs", "GET", "/guilds/{guild}/audit-logs", P.VIEW_AUDIT_LOG),
    Case("list_guild_channels", "GET", "/guilds/{guild}/channels", None),
    Case("create_guild_channel", "POST", "/guilds/{guild}/channels", P.MANAGE_CHANNELS, {"type": 0, "name": "new"}),
    Case("update_guild_channel_positions", "PATCH", "/guilds/{guild}/channels", P.MANAGE_CHANNELS,
         [{"id": "{channel}", "position": 3}], 204),
    Case("get_channel", "GET", "/channels/{channel}", None),
    Case("update_channel", "PATCH", "/channels/{channel}", P.MANAGE_CHANNELS, {"topic": "changed"}),
    Case("delete_channel", "DELETE", "/channels/{channel}", P.MANAGE_CHANNELS, None, 204),
    Case("set_channel_permission_overwrite", "PUT", "/channels/{channel}/permissions/{role}", P.MANAGE_ROLES,
         {"type": 0, "deny": str(int(P.VIEW_CHANNEL))}, 204),
    Case("delete_channel_permission_overwrite", "DELETE", "/channels/{channel}/permissions/{victim}", P.MANAGE_ROLES,
         None, 204),
    Case("list_guild_roles", "GET", "/guilds/{guild}/roles", None),
    Case("create_guild_role", "POST", "/guilds/{guild}/roles", P.MANAGE_ROLES, {"name": "Fresh"}),
    Case("update_guild_role_positions", "PATCH", "/guilds/{guild}/roles", P.MANAGE_ROLES,
         [{"id": "{role}", "position": 1}], 204),
    Case("update_role_hoist_positions", "PATCH", "/guilds/{guild}/roles/hoist-positions", P.MANAGE_ROLES,
         [{"id": "{role}", "hoist_position": 1}], 204),
    Case("reset_role_hoist_positions", "DELETE", "/guilds/{guild}/roles/hoist-positions", P.MANAGE_ROLES, None, 204),
    Case("update_guild_role", "PATCH", "/guilds/{guild}/roles/{role}", P.MANAGE_ROLES, {"name": "Renamed"}),
    Case("delete_guild_role", "DELETE", "/guilds/{guild}/roles/{role}", P.MANAGE_ROLES, None, 204),
    Case("list_guild_members", "GET", "/guilds/{guild}/members", None),
    Case("search_guild_members", "POST", "/guilds/{guild}/members-search", None, {"query": "a"}),
    Case("get_current_guild_member", "GET", "/guilds/{guild}/members/@me", None),
    Case("update_current_guild_member", "PATCH", "/guilds/{guild}/members/@me", P.CHANGE_NICKNAME, {"nick": "Me"}),
    Case("get_guild_member", "GET", "/guilds/{guild}/members/{victim}", None),
    Case("update_guild_member", "PATCH", "/guilds/{guild}/members/{victim}", P.MANAGE_NICKNAMES, {"nick": "You"}),
    Case("remove_guild_member", "DELETE", "/guilds/{guild}/members/{victim}", P.KICK_MEMBERS, None, 204),
    Case("add_guild_member_role", "PUT", "/guilds/{guild}/members/{victim}/roles/{role}", P.MANAGE_ROLES, None, 204),
    Case("remove_guild_member_role", "DELETE", "/guilds/{guild}/members/{victim}/roles/{role}", P.MANAGE_ROLES,
         None, 204),
    Case("list_guild_bans", "GET", "/guilds/{guild}/bans", P.BAN_MEMBERS),
    Case("ban_guild_member", "PUT", "/guilds/{guild}/bans/{victim}", P.BAN_MEMBERS, {}, 204),
    Case("unban_guild_member", "DELETE", "/guilds/{guild}/bans/{banned}", P.BAN_MEMBERS, None, 204),
    Case("create_channel_invite", "POST", "/channels/{channel}/invites", P.CREATE_INSTANT_INVITE, {"max_age": 0}),
    Case("list_channel_invites", "GET", "/channels/{channel}/invites", P.MANAGE_CHANNELS),
    Case("list_guild_invites", "GET", "/guilds/{guild}/invites", P.MANAGE_GUILD),
    Case("delete_invite", "DELETE", "/invites/{invite}", P.MANAGE_GUILD, None, 204),
    Case("list_guild_emojis", "GET", "/guilds/{guild}/emojis", None),
    Case("create_guild_emoji", "POST", "/guilds/{guild}/emojis", P.CREATE_EXPRESSIONS,
         {"name": "leaf", "image": IMAGE}),
    Case("bulk_create_guild_emojis", "POST", "/guilds/{guild}/emojis/bulk", P.CREATE_EXPRESSIONS,
         {"emojis": [{"name": "leaf_two", "image": IMAGE}]}),
    Case("update_guild_emoji", "PATCH", "/guilds/{guild}/emojis/{emoji}", P.MANAGE_EXPRESSIONS, {"name": "petal"}),
    Case("delete_guild_emoji", "DELETE", "/guilds/{guild}/emojis/{emoji}", P.MANAGE_EXPRESSIONS, None, 204),
    Case("list_guild_stickers", "GET", "/guilds/{guild}/stickers", None),
    Case("create_guild_sticker", "POST", "/guilds/{guild}/stickers", P.CREATE_EXPRESSIONS,
         {"name": "sprout", "image": IMAGE, "tags": ["plant"]}),
    Case("update_guild_sticker", "PATCH", "/guilds/{guild}/stickers/{sticker}", P.MANAGE_EXPRESSIONS,
         {"name": "seedling"}),
    Case("delete_guild_sticker", "DELETE", "/guilds/{guild}/stickers/{sticker}", P.MANAGE_EXPRESSIONS, None, 204),
]


def _fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


class World:
    """A fresh guild per case: an owner, a plain member, a member granted one permission, a victim."""

    def __init__(self, client, accounts, case: Case):
        self.client = client
        self.owner, self.plain, self.granted, self.victim, self.stranger = accounts
        owner = self.owner.auth
        guild = client.post("/v1/guilds", json={"name": "Matrix"}, headers=owner).json()
        gid = guild["id"]
        # @everyone may only look, so the plain member holds nothing an operation could need.
        basics = int(P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY)
        client.patch(f"/v1/guilds/{gid}/roles/{gid}", json={"permissions": str(basics)}, headers=owner)
        for account in (self.plain, self.granted, self.victim):
            invite = client.post(f"/v1/channels/{guild['system_channel_id']}/invites", json={"max_age": 0},
                                 headers=owner).json()
            assert client.post(f"/v1/invites/{invite['code']}", headers=account.auth).status_code == 200
        granted_bits = int(P.ADMINISTRATOR) if case.permission == OWNER_ONLY else int(case.permission or 0)
        granted_role = client.post(f"/v1/guilds/{gid}/roles", json={"name": "Granted", "permissions": str(granted_bits)},
                                   headers=owner).json()
        client.put(f"/v1/guilds/{gid}/members/{self.granted.user_id}/roles/{granted_role['id']}", headers=owner)
        target_role = client.post(f"/v1/guilds/{gid}/roles", json={"name": "Target"}, headers=owner).json()
        client.put(f"/v1/guilds/{gid}/members/{self.victim.user_id}/roles/{target_role['id']}", headers=owner)
        channel = client.post(f"/v1/guilds/{gid}/channels", json={"type": 0, "name": "target"}, headers=owner).json()
        client.put(f"/v1/channels/{channel['id']}/permissions/{self.victim.user_id}",
                   json={"type": 1, "deny": str(int(P.READ_MESSAGE_HISTORY))}, headers=owner)
        invite = client.post(f"/v1/channels/{channel['id']}/invites", json={"max_age": 0}, headers=owner).json()
        emoji = client.post(f"/v1/guilds/{gid}/emojis", json={"name": "owned", "image": IMAGE}, headers=owner).json()
        sticker = client.post(f"/v1/guilds/{gid}/stickers", json={"name": "owned", "image": IMAGE, "tags": ["x"]},
                              headers=owner).json()
        client.put(f"/v1/guilds/{gid}/bans/{self.stranger.user_id}", json={}, headers=owner)
        self.ids = {"guild": gid, "channel": channel["id"], "role": target_role["id"], "victim": self.victim.user_id,
                    "invite": invite.get("code"), "emoji": emoji.get("id"), "sticker": sticker.get("id"),
                    "banned": self.stranger.user_id, "vanity": f"v-{uuid.uuid4().hex[:12]}"}

    def call(self, account, case: Case):
        path = "/v1" + _fill(case.path, self.ids)
        body = _fill(case.body, self.ids)
        kwargs = {"json": body} if body is not None else {}
        return self.client.request(case.method, path, headers=account.auth, **kwargs)

    def snapshot(self) -> list:
        """What the owner can see of the guild: any change a failed call made would show here."""
        gid = self.ids["guild"]
        paths = [f"/guilds/{gid}", f"/guilds/{gid}/members?limit=1000", f"/guilds/{gid}/bans",
                 f"/guilds/{gid}/invites", f"/guilds/{gid}/audit-logs?limit=100", f"/channels/{self.ids['channel']}"]
        return [self.client.get("/v1" + path, headers=self.owner.auth).json() for path in paths]


def test_every_operation_checks_membership_and_permission(client, register):
    accounts = [register() for _ in range(5)]
    failures = []
    for case in CASES:
        world = World(client, accounts, case)
        before = world.snapshot()
        stranger = world.call(world.stranger, case)
        if stranger.status_code != 404 or not stranger.json()["code"].startswith("UNKNOWN_"):
            failures.append(f"{case.operation}: stranger got {stranger.status_code} {stranger.text[:120]}")
        elif set(stranger.json()) - ERROR_KEYS:
            failures.append(f"{case.operation}: stranger's error carries data: {stranger.text[:120]}")
        if case.permission is not None:
            plain = world.call(world.plain, case)
            if plain.status_code != 403:
                failures.append(f"{case.operation}: member without permission got {plain.status_code} {plain.text[:120]}")
            elif set(plain.json()) - ERROR_KEYS:
                failures.append(f"{case.operation}: refusal carries data: {plain.text[:120]}")
        if world.snapshot() != before:
            failures.append(f"{case.operation}: a refused call changed the guild")
        allowed_by = world.owner if case.permission == OWNER_ONLY else world.granted
        if case.permission == OWNER_ONLY:
            admin = world.call(world.granted, case)
            if admin.status_code != 403:
                failures.append(f"{case.operation}: an administrator got {admin.status_code}")
        allowed = world.call(allowed_by, case)
        if allowed.status_code != case.success:
            failures.append(f"{case.operation}: allowed caller got {allowed.status_code} {allowed.text[:160]}")
    assert not failures, "\n".join(failures)
