"""Guild emojis and stickers (openapi/emojis.yaml, openapi/stickers.yaml), image checks and storage."""

from __future__ import annotations

import base64
import io
import os
import struct
import zlib

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import update

from service import expressions, images, members
from service.errors import APIError
from service.models import Guild, MemberRole, Role, User
from service.permissions import DEFAULT_EVERYONE, Permission
from service.storage import InvalidKey, LocalStorage

# --- Images made for the tests -------------------------------------------------------------


def png(size=(64, 64), color=(88, 101, 242, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, color).save(out, "PNG")
    return out.getvalue()


def noise_png(size) -> bytes:
    """Incompressible pixels: a file about 3 bytes per pixel."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def noise_gif(frames: int, size) -> bytes:
    """An animation of random pixels: about a byte per pixel per frame."""
    pictures = [Image.frombytes("P", size, os.urandom(size[0] * size[1])) for _ in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=50, loop=0)
    return out.getvalue()


def gif(frames: int = 3, size=(32, 32)) -> bytes:
    pictures = []
    for index in range(frames):
        picture = Image.new("RGB", size, (0, 0, 0))
        ImageDraw.Draw(picture).rectangle((index, index, index + 4, index + 4), fill=(255, 255, 0))
        pictures.append(picture)
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=frames > 1, append_images=pictures[1:], duration=50, loop=0)
    return out.getvalue()


def bmp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "BMP")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int, *, complete: bool = True) -> bytes:
    """A real 1-bit PNG of blank rows: a few KiB that would decode to width*height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    pixels = zlib.compress(row * height, 9) if complete else zlib.compress(row, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


# --- Helpers ------------------------------------------------------------------------------


def _errors(response) -> dict[str, str]:
    return {e["path"]: e["code"] for e in response.json().get("errors", [])}


def _add_member(app, guild: dict, account, *, role_permissions: int | None = None) -> None:
    """Make ``account`` a member without invites; with ``role_permissions``, also give them such a role."""
    rt = app.runtime
    session = rt.db.session
    try:
        members.add(rt, session, session.get(Guild, int(guild["id"])), session.get(User, int(account.user_id)))
        if role_permissions is not None:
            role = Role(id=rt.new_id(), guild_id=int(guild["id"]), name="Expressions", position=1,
                        permissions=role_permissions, color=0, hoist=False, mentionable=False)
            session.add(role)
            session.flush()
            session.add(MemberRole(guild_id=int(guild["id"]), user_id=int(account.user_id), role_id=role.id))
        session.commit()
    finally:
        rt.db.remove()


def _set_everyone(app, guild: dict, permissions: int) -> None:
    rt = app.runtime
    try:
        rt.db.session.execute(update(Role).where(Role.id == int(guild["id"])).values(permissions=permissions))
        rt.db.session.commit()
    finally:
        rt.db.remove()


def _set_features(app, guild: dict, features: list[str]) -> None:
    rt = app.runtime
    try:
        rt.db.session.execute(update(Guild).where(Guild.id == int(guild["id"])).values(features=features))
        rt.db.session.commit()
    finally:
        rt.db.remove()


def _create_emoji(client, account, guild, name="blob", data=None, **headers):
    return client.post(f"/v1/guilds/{guild['id']}/emojis", json={"name": name, "image": uri(data or png())},
                       headers={**account.auth, **headers})


def _create_sticker(client, account, guild, name="Wave", data=None, **fields):
    return client.post(f"/v1/guilds/{guild['id']}/stickers", headers=account.auth,
                       json={"name": name, "image": uri(data or png((320, 320))), **fields})


def _audit(client, owner, guild, action_type: int) -> list[dict]:
    response = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type={action_type}", headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()["audit_log_entries"]


def _events(published, name: str) -> list:
    return [event for event in published if event.name == name]


# --- Emojis -------------------------------------------------------------------------------


def test_emoji_create_list_rename_delete(app, client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    image = png((100, 80))

    created = _create_emoji(client, owner, guild, "party_blob", image, **{"X-Audit-Log-Reason": "for%20fun"})
    assert created.status_code == 200, created.text
    emoji = created.json()
    assert emoji["name"] == "party_blob" and emoji["animated"] is False and emoji["nsfw"] is False
    assert app.runtime.storage.get(f"emojis/{emoji['id']}") == image  # stored exactly as uploaded

    listed = client.get(f"/v1/guilds/{guild['id']}/emojis", headers=owner.auth)
    assert listed.status_code == 200
    assert [(e["id"], e["name"]) for e in listed.json()] == [(emoji["id"], "party_blob")]
    assert listed.json()[0]["user"]["id"] == owner.user_id and "email" not in listed.json()[0]["user"]
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["emojis"] == [emoji]

    renamed = client.patch(f"/v1/guilds/{guild['id']}/emojis/{emoji['id']}", json={"name": "dancing_blob"},
                           headers=owner.auth)
    assert renamed.status_code == 200
    assert renamed.json() == {**emoji, "name": "dancing_blob"}

    deleted = client.delete(f"/v1/guilds/{guild['id']}/emojis/{emoji['id']}", headers=owner.auth)
    assert deleted.status_code == 204
    assert client.get(f"/v1/guilds/{guild['id']}/emojis", headers=owner.auth).json() == []
    assert app.runtime.storage.get(f"emojis/{emoji['id']}") is None
    again = client.delete(f"/v1/guilds/{guild['id']}/emojis/{emoji['id']}", headers=owner.auth)
    assert again.status_code == 404 and again.json()["code"] == "UNKNOWN_EMOJI"

    updates = _events(published, "GUILD_EMOJIS_UPDATE")
    assert [[e["name"] for e in event.data["emojis"]] for event in updates] == [["party_blob"], ["dancing_blob"], []]
    assert all(event.guild_id == int(guild["id"]) and event.data["guild_id"] == guild["id"] for event in updates)

    (create_entry,) = _audit(client, owner, guild, 60)
    assert create_entry["target_id"] == emoji["id"] and create_entry["user_id"] == owner.user_id
    assert create_entry["reason"] == "for fun"
    assert create_entry["changes"] == [{"key": "name", "old_value": None, "new_value": "party_blob"}]
    (update_entry,) = _audit(client, owner, guild, 61)
    assert update_entry["changes"] == [{"key": "name", "old_value": "party_blob", "new_value": "dancing_blob"}]
    (delete_entry,) = _audit(client, owner, guild, 62)
    assert delete_entry["target_id"] == emoji["id"]


def test_emoji_accepts_bare_base64_jpeg_and_webp(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    for fmt in ("JPEG", "WEBP"):
        out = io.BytesIO()
        Image.new("RGB", (48, 48), (200, 10, 10)).save(out, fmt)
        bare = base64.b64encode(out.getvalue()).decode().rstrip("=")  # padding is optional
        response = client.post(f"/v1/guilds/{guild['id']}/emojis", json={"name": f"e_{fmt}", "image": bare},
                               headers=owner.auth)
        assert response.status_code == 200, response.text


def test_animated_gif_is_an_animated_emoji(app, client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    animated = _create_emoji(client, owner, guild, "spinning", gif(frames=4))
    assert animated.status_code == 200, animated.text
    assert animated.json()["animated"] is True
    still = _create_emoji(client, owner, guild, "still_gif", gif(frames=1))
    assert still.status_code == 200 and still.json()["animated"] is False
    from service.models import Emoji

    try:
        row = app.runtime.db.session.get(Emoji, int(animated.json()["id"]))
        assert row.content_type == "image/gif" and row.animated is True
    finally:
        app.runtime.db.remove()


@pytest.mark.parametrize(("image", "code"), [
    ("this is not base64!", "INVALID_BASE64"),
    (base64.b64encode(b"just some text, not an image").decode(), "INVALID_IMAGE"),
    (uri(b"plain text", "text/plain"), "INVALID_IMAGE"),
    (uri(bmp(), "image/bmp"), "INVALID_IMAGE_FORMAT"),
    (uri(png()[:40]), "INVALID_IMAGE"),  # truncated: the header parses, the pixels do not
    (uri(noise_png((300, 300))), "FILE_SIZE_TOO_LARGE"),
    (uri(png((513, 64))), "IMAGE_DIMENSIONS_TOO_LARGE"),
    (uri(bomb_png(6000, 6000)), "IMAGE_DIMENSIONS_TOO_LARGE"),
    (uri(bomb_png(200_000, 200_000, complete=False)), "IMAGE_TOO_LARGE"),
], ids=["bad-base64", "not-an-image", "data-uri-not-image", "bmp", "truncated", "too-big", "too-wide",
        "bomb", "huge-bomb"])
def test_emoji_image_refused_naming_the_field(app, client, register, make_guild, published, image, code):
    owner = register()
    guild = make_guild(owner)
    response = client.post(f"/v1/guilds/{guild['id']}/emojis", json={"name": "bad_one", "image": image},
                           headers=owner.auth)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_FORM_BODY"
    assert _errors(response) == {"image": code}
    assert client.get(f"/v1/guilds/{guild['id']}/emojis", headers=owner.auth).json() == []
    assert not _events(published, "GUILD_EMOJIS_UPDATE")


def test_emoji_name_is_checked(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    for name in ("a", "has space", "x" * 33, "émoji"):
        response = _create_emoji(client, owner, guild, name)
        assert response.status_code == 400 and "name" in _errors(response), name


def test_bulk_create_reports_each_failure(app, client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    body = {"emojis": [
        {"name": "good_one", "image": uri(png())},
        {"name": "bad_base64", "image": "%%%"},
        {"name": "animated_one", "image": uri(gif())},
        {"name": "not_image", "image": uri(b"hello")},
        {"name": "too_wide", "image": uri(png((600, 10)))},
    ]}
    response = client.post(f"/v1/guilds/{guild['id']}/emojis/bulk", json=body, headers=owner.auth)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [(e["name"], e["animated"]) for e in result["success"]] == [("good_one", False), ("animated_one", True)]
    assert [f["name"] for f in result["failed"]] == ["bad_base64", "not_image", "too_wide"]
    assert "base64" in result["failed"][0]["error"]
    assert "600x10" in result["failed"][2]["error"]

    listed = client.get(f"/v1/guilds/{guild['id']}/emojis", headers=owner.auth).json()
    assert sorted(e["name"] for e in listed) == ["animated_one", "good_one"]
    for emoji in result["success"]:
        assert app.runtime.storage.get(f"emojis/{emoji['id']}")
    (event,) = _events(published, "GUILD_EMOJIS_UPDATE")
    assert len(event.data["emojis"]) == 2
    assert len(_audit(client, owner, guild, 60)) == 2

    too_many = client.post(f"/v1/guilds/{guild['id']}/emojis/bulk", headers=owner.auth,
                           json={"emojis": [{"name": f"e{i}", "image": uri(png())} for i in range(51)]})
    assert too_many.status_code == 400 and "emojis" in _errors(too_many)


def test_emoji_limits_count_static_and_animated_apart(client, register, make_guild, monkeypatch):
    monkeypatch.setattr(expressions, "MAX_EMOJIS", 2)
    monkeypatch.setattr(expressions, "MAX_ANIMATED_EMOJIS", 1)
    owner = register()
    guild = make_guild(owner)
    assert _create_emoji(client, owner, guild, "one").status_code == 200
    assert _create_emoji(client, owner, guild, "two").status_code == 200
    full = _create_emoji(client, owner, guild, "three")
    assert full.status_code == 400 and full.json()["code"] == "MAX_EMOJIS"
    assert _create_emoji(client, owner, guild, "moving", gif()).status_code == 200  # its own allowance
    full_animated = _create_emoji(client, owner, guild, "moving_too", gif())
    assert full_animated.status_code == 400 and full_animated.json()["code"] == "MAX_ANIMATED_EMOJIS"

    bulk = client.post(f"/v1/guilds/{guild['id']}/emojis/bulk", headers=owner.auth,
                       json={"emojis": [{"name": "four", "image": uri(png())}]})
    assert bulk.status_code == 200
    assert bulk.json()["success"] == [] and bulk.json()["failed"][0]["name"] == "four"
    assert "Maximum number of emojis" in bulk.json()["failed"][0]["error"]
    assert len(client.get(f"/v1/guilds/{guild['id']}/emojis", headers=owner.auth).json()) == 3


def test_emoji_permissions(app, client, register, make_guild):
    owner, member, manager, stranger = register(), register(), register(), register()
    guild = make_guild(owner)
    _add_member(app, guild, member)
    _add_member(app, guild, manager, role_permissions=int(Permission.MANAGE_EXPRESSIONS))
    owners = _create_emoji(client, owner, guild, "owners").json()
    base = f"/v1/guilds/{guild['id']}/emojis"

    # A stranger learns nothing, not even that the guild exists.
    for response in (client.get(base, headers=stranger.auth), _create_emoji(client, stranger, guild),
                     client.delete(f"{base}/{owners['id']}", headers=stranger.auth)):
        assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_GUILD"

    # @everyone has CREATE_EXPRESSIONS by default: members upload, and manage only their own.
    mine = _create_emoji(client, member, guild, "members")
    assert mine.status_code == 200
    mine = mine.json()
    assert client.patch(f"{base}/{mine['id']}", json={"name": "renamed"}, headers=member.auth).status_code == 200
    for response in (client.patch(f"{base}/{owners['id']}", json={"name": "hijacked"}, headers=member.auth),
                     client.delete(f"{base}/{owners['id']}", headers=member.auth)):
        assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"
    assert client.delete(f"{base}/{mine['id']}", headers=member.auth).status_code == 204

    # MANAGE_EXPRESSIONS covers everyone's.
    assert client.patch(f"{base}/{owners['id']}", json={"name": "managed"}, headers=manager.auth).status_code == 200
    assert client.delete(f"{base}/{owners['id']}", headers=manager.auth).status_code == 204

    # Without CREATE_EXPRESSIONS a member may list but not upload.
    _set_everyone(app, guild, DEFAULT_EVERYONE & ~int(Permission.CREATE_EXPRESSIONS))
    refused = _create_emoji(client, member, guild, "nope")
    assert refused.status_code == 403 and refused.json()["code"] == "MISSING_PERMISSIONS"
    assert refused.json()["permissions"] == ["CREATE_EXPRESSIONS"]
    bulk = client.post(f"{base}/bulk", json={"emojis": [{"name": "nope", "image": uri(png())}]}, headers=member.auth)
    assert bulk.status_code == 403
    assert client.get(base, headers=member.auth).status_code == 200
    assert _create_emoji(client, manager, guild, "still_ok").status_code == 200


def test_emoji_metadata_and_clone(app, client, register, make_guild):
    alice, bob = register(), register()
    source_guild = make_guild(alice, "Source")
    target = make_guild(bob, "Target")
    original = _create_emoji(client, alice, source_guild, "shiny", gif()).json()

    meta = client.get(f"/v1/emojis/{original['id']}/metadata", headers=bob.auth)  # bob is no member
    assert meta.status_code == 200
    assert meta.json() == {"id": original["id"], "guild_id": source_guild["id"], "name": "shiny", "animated": True,
                           "allow_cloning": True}
    unknown = client.get("/v1/emojis/1234567890123/metadata", headers=bob.auth)
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_EMOJI"
    assert client.get(f"/v1/emojis/{original['id']}/metadata").status_code == 401

    cloned = client.post(f"/v1/guilds/{target['id']}/emojis/clone", json={"source_emoji_id": original["id"]},
                         headers=bob.auth)
    assert cloned.status_code == 200, cloned.text
    copy = cloned.json()
    assert copy["id"] != original["id"] and copy["name"] == "shiny" and copy["animated"] is True
    storage = app.runtime.storage
    assert storage.get(f"emojis/{copy['id']}") == storage.get(f"emojis/{original['id']}")

    _set_features(app, source_guild, ["CLONE_EMOJI_DISABLED"])
    assert client.get(f"/v1/emojis/{original['id']}/metadata", headers=bob.auth).json()["allow_cloning"] is False
    refused = client.post(f"/v1/guilds/{target['id']}/emojis/clone", json={"source_emoji_id": int(original["id"])},
                          headers=bob.auth)
    assert refused.status_code == 403 and refused.json()["code"] == "MISSING_PERMISSIONS"
    # Members of the source guild still may.
    alices_other = make_guild(alice, "Other")
    own = client.post(f"/v1/guilds/{alices_other['id']}/emojis/clone", json={"source_emoji_id": original["id"]},
                      headers=alice.auth)
    assert own.status_code == 200
    missing = client.post(f"/v1/guilds/{target['id']}/emojis/clone", json={"source_emoji_id": "1234567890123"},
                          headers=bob.auth)
    assert missing.status_code == 404 and missing.json()["code"] == "UNKNOWN_EMOJI"


def test_emoji_of_another_guild_is_unknown(client, register, make_guild):
    owner = register()
    first, second = make_guild(owner, "First"), make_guild(owner, "Second")
    emoji = _create_emoji(client, owner, first).json()
    response = client.patch(f"/v1/guilds/{second['id']}/emojis/{emoji['id']}", json={"name": "moved"},
                            headers=owner.auth)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_EMOJI"


# --- Stickers -----------------------------------------------------------------------------


def test_sticker_create_list_update_delete(app, client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    image = png((320, 320))
    created = _create_sticker(client, owner, guild, "Wave", image, description="A friendly wave",
                              tags=["hello", " wave ", " ", "hello"])
    assert created.status_code == 200, created.text
    sticker = created.json()
    assert sticker["name"] == "Wave" and sticker["description"] == "A friendly wave"
    assert sticker["tags"] == ["hello", "wave"] and sticker["animated"] is False and sticker["nsfw"] is False
    assert app.runtime.storage.get(f"stickers/{sticker['id']}") == image

    listed = client.get(f"/v1/guilds/{guild['id']}/stickers", headers=owner.auth).json()
    assert [s["id"] for s in listed] == [sticker["id"]] and listed[0]["user"]["id"] == owner.user_id

    changed = client.patch(f"/v1/guilds/{guild['id']}/stickers/{sticker['id']}", headers=owner.auth,
                           json={"name": "Big Wave", "description": None})
    assert changed.status_code == 200
    assert changed.json() == {**sticker, "name": "Big Wave", "description": ""}  # tags left alone

    assert client.delete(f"/v1/guilds/{guild['id']}/stickers/{sticker['id']}?purge=true",
                         headers=owner.auth).status_code == 204
    assert client.get(f"/v1/guilds/{guild['id']}/stickers", headers=owner.auth).json() == []
    assert app.runtime.storage.get(f"stickers/{sticker['id']}") is None

    updates = _events(published, "GUILD_STICKERS_UPDATE")
    assert [[s["name"] for s in event.data["stickers"]] for event in updates] == [["Wave"], ["Big Wave"], []]
    assert all(event.guild_id == int(guild["id"]) for event in updates)
    (entry,) = _audit(client, owner, guild, 90)
    assert {c["key"] for c in entry["changes"]} == {"name", "description", "tags"}
    (entry,) = _audit(client, owner, guild, 91)
    assert {c["key"]: c["new_value"] for c in entry["changes"]} == {"name": "Big Wave", "description": ""}
    assert len(_audit(client, owner, guild, 92)) == 1


def test_sticker_images_and_fields_are_checked(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    wide = _create_sticker(client, owner, guild, data=png((321, 320)))
    assert wide.status_code == 400 and _errors(wide) == {"image": "IMAGE_DIMENSIONS_TOO_LARGE"}
    heavy_image = noise_gif(4, (320, 320))
    assert 512 * 1024 < len(heavy_image) < 700 * 1024  # over the limit, under the request body cap
    heavy = _create_sticker(client, owner, guild, data=heavy_image)
    assert heavy.status_code == 400 and _errors(heavy) == {"image": "FILE_SIZE_TOO_LARGE"}
    animated = _create_sticker(client, owner, guild, data=gif(frames=5, size=(100, 100)))
    assert animated.status_code == 200 and animated.json()["animated"] is True
    for fields in ({"name": "x"}, {"name": " padded"}, {"name": "Wave", "tags": ["t"] * 11},
                   {"name": "Wave", "description": "d" * 101}, {"name": "Wave", "tags": ["t" * 31]}):
        response = client.post(f"/v1/guilds/{guild['id']}/stickers", headers=owner.auth,
                               json={"image": uri(png((32, 32))), **fields})
        assert response.status_code == 400 and response.json()["code"] == "INVALID_FORM_BODY", fields


def test_sticker_bulk_limits_permissions_metadata_clone(app, client, register, make_guild, published, monkeypatch):
    monkeypatch.setattr(expressions, "MAX_STICKERS", 2)
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    _add_member(app, guild, member)
    bulk = client.post(f"/v1/guilds/{guild['id']}/stickers/bulk", headers=owner.auth, json={"stickers": [
        {"name": "One", "image": uri(png((64, 64)))},
        {"name": "Broken", "image": uri(b"GIF89a nonsense", "image/gif")},
        {"name": "Two", "image": uri(png((64, 64)))},
        {"name": "Three", "image": uri(png((64, 64)))},
    ]})
    assert bulk.status_code == 200, bulk.text
    assert [s["name"] for s in bulk.json()["success"]] == ["One", "Two"]
    assert [f["name"] for f in bulk.json()["failed"]] == ["Broken", "Three"]
    assert "Maximum number of stickers" in bulk.json()["failed"][1]["error"]
    assert len(_events(published, "GUILD_STICKERS_UPDATE")) == 1
    one = bulk.json()["success"][0]

    # The member may not touch the owner's sticker; the stranger sees no guild.
    forbidden = client.delete(f"/v1/guilds/{guild['id']}/stickers/{one['id']}", headers=member.auth)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "MISSING_PERMISSIONS"
    hidden = client.get(f"/v1/guilds/{guild['id']}/stickers", headers=stranger.auth)
    assert hidden.status_code == 404 and hidden.json()["code"] == "UNKNOWN_GUILD"

    meta = client.get(f"/v1/stickers/{one['id']}/metadata", headers=stranger.auth)
    assert meta.status_code == 200
    assert meta.json() == {"id": one["id"], "guild_id": guild["id"], "name": "One", "animated": False,
                           "allow_cloning": True}
    assert client.get("/v1/stickers/1234567890123/metadata", headers=stranger.auth).json()["code"] == "UNKNOWN_STICKER"

    strangers_guild = make_guild(stranger, "Elsewhere")
    cloned = client.post(f"/v1/guilds/{strangers_guild['id']}/stickers/clone", json={"source_sticker_id": one["id"]},
                         headers=stranger.auth)
    assert cloned.status_code == 200 and cloned.json()["name"] == "One"
    assert app.runtime.storage.get(f"stickers/{cloned.json()['id']}") == app.runtime.storage.get(f"stickers/{one['id']}")
    _set_features(app, guild, ["CLONE_STICKER_DISABLED"])
    assert client.get(f"/v1/stickers/{one['id']}/metadata", headers=stranger.auth).json()["allow_cloning"] is False
    refused = client.post(f"/v1/guilds/{strangers_guild['id']}/stickers/clone",
                          json={"source_sticker_id": one["id"]}, headers=stranger.auth)
    assert refused.status_code == 403


# --- Storage and the image module ----------------------------------------------------------


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a//b", "a/../../b", "", ".hidden", "a/./b",
                                 "emojis/\x00", "a\\..\\b"])
def test_storage_keys_never_leave_the_directory(tmp_path, key):
    storage = LocalStorage(tmp_path / "media")
    with pytest.raises(InvalidKey):
        storage.put(key, b"x", "text/plain")
    with pytest.raises(InvalidKey):
        storage.get(key)
    assert not (tmp_path / "escape").exists()


def test_storage_round_trip(tmp_path):
    storage = LocalStorage(tmp_path)
    assert storage.get("emojis/1") is None
    storage.put("emojis/1", b"first", "image/png")
    storage.put("emojis/1", b"second", "image/png")
    assert storage.get("emojis/1") == b"second"
    assert (tmp_path / "emojis" / "1").read_bytes() == b"second"
    storage.delete("emojis/1")
    storage.delete("emojis/1")  # twice is fine
    assert storage.get("emojis/1") is None
    assert [p.name for p in (tmp_path / "emojis").iterdir()] == []  # no temporary files left


def test_store_guild_image_is_content_addressed(tmp_path):
    storage = LocalStorage(tmp_path)
    still = images.store_guild_image(storage, 42, "icon", uri(png((256, 256))))
    assert len(still) == 32 and not still.startswith("a_")
    assert images.store_guild_image(storage, 42, "icon", base64.b64encode(png((256, 256))).decode()) == still
    assert storage.get(f"icons/42/{still}") == png((256, 256))
    moving = images.store_guild_image(storage, 42, "banner", uri(gif(size=(96, 48))))
    assert moving.startswith("a_") and storage.get(f"banners/42/{moving}")
    with pytest.raises(APIError) as refused:
        images.store_guild_image(storage, 42, "icon", uri(png((1025, 1025))))
    assert refused.value.errors[0].path == "icon"
    assert refused.value.errors[0].code == "IMAGE_DIMENSIONS_TOO_LARGE"


def test_decode_reports_size_and_animation():
    decoded = images.decode(uri(gif(frames=2, size=(40, 30))), "image", max_bytes=1024 * 1024, max_width=64,
                            max_height=64)
    assert (decoded.content_type, decoded.width, decoded.height, decoded.animated) == ("image/gif", 40, 30, True)
    encoded = base64.b64encode(png()).decode()
    wrapped = "data:image/png;base64,\n" + "\n".join(encoded[i:i + 60] for i in range(0, len(encoded), 60))
    assert images.decode(wrapped, "image", max_bytes=4096, max_width=64, max_height=64).content_type == "image/png"
    with pytest.raises(APIError) as small:
        images.decode(wrapped, "image", max_bytes=16, max_width=64, max_height=64)
    assert small.value.errors[0].code == "FILE_SIZE_TOO_LARGE"


def test_long_animations_are_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(images, "MAX_FRAMES", 3)
    with pytest.raises(APIError) as refused:
        images.decode(uri(gif(frames=4)), "image", max_bytes=1024 * 1024, max_width=64, max_height=64)
    assert (refused.value.errors[0].path, refused.value.errors[0].code) == ("image", "IMAGE_TOO_LARGE")
    assert images.decode(uri(gif(frames=3)), "image", max_bytes=1024 * 1024, max_width=64, max_height=64).animated


def test_storage_keys_of_a_guild(app, client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    emoji = _create_emoji(client, owner, guild).json()
    sticker = _create_sticker(client, owner, guild).json()
    try:
        keys = expressions.storage_keys_of(app.runtime.db.session, int(guild["id"]))
    finally:
        app.runtime.db.remove()
    assert keys == [f"emojis/{emoji['id']}", f"stickers/{sticker['id']}"]
    assert all(app.runtime.storage.get(key) for key in keys)


def test_multi_picture_jpeg_is_a_still_jpeg():
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (40, 30))])
    decoded = images.decode(uri(out.getvalue(), "image/jpeg"), "image", max_bytes=65536, max_width=64, max_height=64)
    assert (decoded.content_type, decoded.animated) == ("image/jpeg", False)


def _gif_with_a_large_later_frame(size: int) -> bytes:
    """A GIF whose header and first frame are 1x1 but whose second frame is size x size."""
    import io

    from PIL import Image

    def one_frame(dimensions, color) -> bytes:
        image = Image.new("P", dimensions, color)
        image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
        buffer = io.BytesIO()
        image.save(buffer, "GIF")
        return buffer.getvalue()

    def split(data: bytes) -> tuple[bytes, bytes]:
        flags = data[10]
        table = 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
        return data[:13 + table], data[13 + table:-1]  # (header with colour table, frames without trailer)

    head, first = split(one_frame((1, 1), 0))
    _, second = split(one_frame((size, size), 1))
    return head + first + second + b"\x3b"


def test_every_frame_of_an_animation_is_held_to_the_limits(client, register, make_guild):
    import base64

    owner = register()
    guild = make_guild(owner)
    image = "data:image/gif;base64," + base64.b64encode(_gif_with_a_large_later_frame(520)).decode()
    response = client.post(f"/v1/guilds/{guild['id']}/emojis", json={"name": "sneaky", "image": image},
                           headers=owner.auth)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "IMAGE_DIMENSIONS_TOO_LARGE"
    assert client.get(f"/v1/guilds/{guild['id']}/emojis", headers=owner.auth).json() == []
