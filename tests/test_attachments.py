"""Files sent with messages (multipart send_message), the media route, and deleting them (openapi/attachments.yaml)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from sqlalchemy import delete
from starlette.testclient import TestClient

from service import attachments, storage
from service.app import create_app
from service.models import Message
from service.permissions import Permission
from tests.conftest import PASSWORD, make_settings


def _png(width: int = 7, height: int = 5) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, "PNG")
    return out.getvalue()


def _animated_gif() -> bytes:
    out = io.BytesIO()
    frames = [Image.new("RGB", (4, 4), color) for color in ("red", "blue")]
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    return out.getvalue()


def _send(client, account, channel_id, files, payload=None, **kwargs):
    """files: [(part name, filename, bytes)]; each part claims a misleading content type on purpose."""
    data = {"payload_json": json.dumps(payload)} if payload is not None else None
    parts = [(field, (filename, content, "text/html")) for field, filename, content in files]
    return client.post(f"/v1/channels/{channel_id}/messages", data=data, files=parts, headers=account.auth, **kwargs)


def _path(url: str) -> str:
    """The media URL as a path on the test server (MEDIA_URL points at this server's /media)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _stored(app, channel_id: str, attachment: dict) -> bytes | None:
    return app.runtime.storage.get(attachments.storage_key(int(channel_id), int(attachment["id"])))


def _raw_multipart(client, account, channel_id, body: bytes, boundary: str = "b0undary"):
    return client.post(f"/v1/channels/{channel_id}/messages", content=body,
                       headers={**account.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})


@pytest.fixture
def guild_channel(register, make_guild):
    owner = register()
    guild = make_guild(owner)
    return owner, guild, guild["system_channel_id"]


def test_image_upload_is_sniffed_measured_and_served(client, app, guild_channel, published):
    owner, _guild, channel = guild_channel
    image = _png(7, 5)
    response = _send(client, owner, channel, [("files[0]", "../../etc/cat.png", image)],
                     {"content": "look", "attachments": [{"id": 0, "description": "A red square"}]})
    assert response.status_code == 200, response.text
    message = response.json()
    [attachment] = message["attachments"]
    assert attachment["content_type"] == "image/png"  # not the text/html the part claimed
    assert (attachment["width"], attachment["height"], attachment["size"]) == (7, 5, len(image))
    assert attachment["filename"] == "cat.png" and attachment["description"] == "A red square"
    assert attachment["flags"] == 0 and attachment["url"] == attachment["proxy_url"]
    assert _stored(app, channel, attachment) == image

    served = client.get(_path(attachment["url"]))  # no Authorization: browsers send none
    assert served.status_code == 200 and served.content == image
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"] == "inline; filename=cat.png"
    assert "sandbox" in served.headers["content-security-policy"]
    ranged = client.get(_path(attachment["url"]), headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == image[:4]

    history = client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json()
    assert history[0]["attachments"] == [attachment]
    created = [e for e in published if e.name == "MESSAGE_CREATE"]
    assert created[-1].data["attachments"] == [attachment]


@pytest.mark.parametrize(("content", "content_type", "disposition"), [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf", "attachment"),
    (_zip(), "application/zip", "attachment"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "video/mp4", "inline"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm", "inline"),
    ("notes: ünïcode ✓\n".encode(), "text/plain; charset=utf-8", "inline"),
    (b"\x00\x01\x02binary\xff", "application/octet-stream", "attachment"),
    (b"\x89PNG\r\n\x1a\n" + b"not really a png", "application/octet-stream", "attachment"),
], ids=["pdf", "zip", "mp4", "webm", "text", "binary", "fake-png"])
def test_file_types_come_from_the_bytes(client, guild_channel, content, content_type, disposition):
    owner, _guild, channel = guild_channel
    response = _send(client, owner, channel, [("files[0]", "file.png", content)])  # files alone: no payload_json
    assert response.status_code == 200, response.text
    [attachment] = response.json()["attachments"]
    assert response.json()["content"] == ""
    assert attachment["content_type"] == content_type
    assert attachment["width"] is None and attachment["height"] is None
    served = client.get(_path(attachment["url"]))
    assert served.content == content and served.headers["content-type"] == content_type
    assert served.headers["content-disposition"].startswith(disposition)


def test_spoilers_and_animation_flags(client, guild_channel):
    owner, _guild, channel = guild_channel
    response = _send(client, owner, channel,
                     [("files[0]", "SPOILER_plot.txt", b"the butler did it"), ("files[1]", "ending.txt", b"twist"),
                      ("files[2]", "plain.txt", b"nothing"), ("files[3]", "dance.gif", _animated_gif())],
                     {"attachments": [{"id": 1, "flags": attachments.IS_SPOILER | 16}]})
    assert response.status_code == 200, response.text
    flags = {a["filename"]: a["flags"] for a in response.json()["attachments"]}
    assert flags == {"SPOILER_plot.txt": attachments.IS_SPOILER, "ending.txt": attachments.IS_SPOILER,
                     "plain.txt": 0, "dance.gif": attachments.IS_ANIMATED}  # only the spoiler bit is the client's


def test_filenames_are_cleaned():
    assert attachments.safe_filename("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    assert attachments.safe_filename("../..") == "unknown"
    assert attachments.safe_filename("evil\u202egnp.exe") == "evilgnp.exe"  # no right-to-left override
    assert attachments.safe_filename("a\r\nb.txt") == "ab.txt"
    long = attachments.safe_filename("x" * 300 + ".tar.gz")
    assert len(long) == attachments.MAX_FILENAME_LENGTH and long.endswith("x.gz")


def test_metadata_renames_and_must_name_a_sent_file(client, guild_channel):
    owner, _guild, channel = guild_channel
    renamed = _send(client, owner, channel, [("files[3]", "a.txt", b"hi")],
                    {"attachments": [{"id": "3", "filename": "dir/Ünïcode name.txt"}]})
    assert renamed.status_code == 200, renamed.text
    [attachment] = renamed.json()["attachments"]
    assert attachment["filename"] == "Ünïcode name.txt"
    served = client.get(_path(attachment["url"]))
    assert served.status_code == 200 and "filename*=UTF-8''%C3%9Cn%C3%AFcode%20name.txt" in served.headers[
        "content-disposition"]

    unknown = _send(client, owner, channel, [("files[0]", "a.txt", b"hi")], {"attachments": [{"id": 1}]})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["path"] == "attachments.0.id"
    without_files = client.post(f"/v1/channels/{channel}/messages", json={"content": "x", "attachments": [{"id": 0}]},
                                headers=owner.auth)
    assert without_files.status_code == 400 and without_files.json()["errors"][0]["path"] == "attachments.0.id"
    badly_named = _send(client, owner, channel, [("file", "a.txt", b"hi")])
    assert badly_named.status_code == 400 and badly_named.json()["errors"][0]["path"] == "file"
    twice = _send(client, owner, channel, [("files[0]", "a.txt", b"hi"), ("files[0]", "b.txt", b"hi")])
    assert twice.status_code == 400 and twice.json()["code"] == "INVALID_FORM_BODY"


def test_too_many_files(client, guild_channel):
    owner, _guild, channel = guild_channel
    files = [(f"files[{n}]", f"{n}.txt", b"x") for n in range(attachments.MAX_ATTACHMENTS + 1)]
    response = _send(client, owner, channel, files)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["path"] == "files"
    assert client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json() == []


@pytest.fixture
def small_limits(database_url, tmp_path):
    """A second server on the same database whose upload limits are tiny (and storage is empty)."""
    app = create_app(make_settings(database_url, STORAGE_DIR=str(tmp_path), MAX_ATTACHMENT_BYTES="1000",
                                   MAX_ATTACHMENTS_TOTAL_BYTES="1500", MAX_BODY_BYTES="4096"))
    with TestClient(app) as small:
        yield small, tmp_path
    app.runtime.db.dispose()


def test_size_limits(small_limits, guild_channel):
    small, storage_dir = small_limits
    owner, _guild, channel = guild_channel
    assert _send(small, owner, channel, [("files[0]", "ok.bin", b"\x00" * 1000)]).status_code == 200

    one_too_big = _send(small, owner, channel, [("files[0]", "big.bin", b"\x00" * 1001)])
    assert one_too_big.status_code == 413 and one_too_big.json()["code"] == "FILE_SIZE_TOO_LARGE"
    together = _send(small, owner, channel, [("files[0]", "a.bin", b"\x00" * 800), ("files[1]", "b.bin", b"\x00" * 800)])
    assert together.status_code == 413 and together.json()["code"] == "MESSAGE_TOTAL_ATTACHMENT_SIZE_TOO_LARGE"
    # The edge refuses a body beyond every file's room plus MAX_BODY_BYTES before reading it...
    body = _send(small, owner, channel, [("files[0]", "huge.bin", b"\x00" * (1500 + 4096))])
    assert body.status_code == 413 and body.json()["code"] == "PAYLOAD_TOO_LARGE"

    # ...and counts a chunked one as it streams.
    def chunks():
        yield b"--b0undary\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a\"\r\n\r\n"
        for _ in range(10):
            yield b"\x00" * 1000

    chunked = small.post(f"/v1/channels/{channel}/messages", content=chunks(),
                         headers={**owner.auth, "Content-Type": "multipart/form-data; boundary=b0undary"})
    assert chunked.status_code == 413 and chunked.json()["code"] == "PAYLOAD_TOO_LARGE"
    # The first file of the refused pair was stored, and removed again with its message.
    assert sorted(p.name for p in storage_dir.rglob("*") if p.is_file()) == [
        m["attachments"][0]["id"] for m in small.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json()]
    # The JSON form keeps the ordinary cap on this route.
    too_long = small.post(f"/v1/channels/{channel}/messages", json={"content": "x" * 5000}, headers=owner.auth)
    assert too_long.status_code == 413


def test_chunked_upload_within_the_limit(client, guild_channel):
    owner, _guild, channel = guild_channel

    def chunks():
        yield b'--b0undary\r\nContent-Disposition: form-data; name="payload_json"\r\n\r\n{"content": "streamed"}\r\n'
        yield b'--b0undary\r\nContent-Disposition: form-data; name="files[0]"; filename="s.txt"\r\n\r\nsome text'
        yield b"\r\n--b0undary--\r\n"

    response = client.post(f"/v1/channels/{channel}/messages", content=chunks(),
                           headers={**owner.auth, "Content-Type": "multipart/form-data; boundary=b0undary"})
    assert response.status_code == 200, response.text
    assert response.json()["content"] == "streamed" and response.json()["attachments"][0]["size"] == 9


def test_attach_files_permission(client, guild_channel, register, add_member, app):
    owner, guild, channel = guild_channel
    member = register()
    add_member(member, guild)
    denied = client.put(f"/v1/channels/{channel}/permissions/{guild['id']}",
                        json={"type": 0, "deny": str(int(Permission.ATTACH_FILES))}, headers=owner.auth)
    assert denied.status_code == 204
    response = _send(client, member, channel, [("files[0]", "a.png", _png())], {"content": "with a file"})
    assert response.status_code == 403 and response.json()["permissions"] == ["ATTACH_FILES"]
    assert client.post(f"/v1/channels/{channel}/messages", json={"content": "words only"},
                       headers=member.auth).status_code == 200
    assert _send(client, owner, channel, [("files[0]", "a.png", _png())]).status_code == 200  # the owner holds all


def test_deleting_an_attachment(client, app, guild_channel, register, add_member, published):
    owner, guild, channel = guild_channel
    member, stranger = register(), register()
    add_member(member, guild)
    message = _send(client, member, channel, [("files[0]", "a.txt", b"first"), ("files[1]", "b.txt", b"second")],
                    {"content": "two files"}).json()
    first, second = message["attachments"]
    url = f"/v1/channels/{channel}/messages/{message['id']}/attachments"

    assert client.delete(f"{url}/{first['id']}", headers=stranger.auth).status_code == 404  # learns nothing
    other_member = register()
    add_member(other_member, guild)
    refused = client.delete(f"{url}/{first['id']}", headers=other_member.auth)
    assert refused.status_code == 403 and refused.json()["code"] == "MISSING_PERMISSIONS"
    assert client.delete(f"{url}/123", headers=member.auth).status_code == 404
    assert _stored(app, channel, first) == b"first"

    assert client.delete(f"{url}/{first['id']}", headers=member.auth).status_code == 204
    assert _stored(app, channel, first) is None
    assert client.get(_path(first["url"])).status_code == 404
    updated = [e for e in published if e.name == "MESSAGE_UPDATE"][-1].data
    assert [a["id"] for a in updated["attachments"]] == [second["id"]] and updated["edited_timestamp"] is not None
    after = client.get(f"/v1/channels/{channel}/messages/{message['id']}", headers=owner.auth).json()
    assert after["content"] == "two files" and [a["id"] for a in after["attachments"]] == [second["id"]]
    assert client.delete(f"{url}/{second['id']}", headers=owner.auth).status_code == 204  # MANAGE_MESSAGES

    only_file = _send(client, member, channel, [("files[0]", "c.txt", b"alone")]).json()
    empty = client.delete(f"/v1/channels/{channel}/messages/{only_file['id']}/attachments/"
                          f"{only_file['attachments'][0]['id']}", headers=member.auth)
    assert empty.status_code == 400 and empty.json()["code"] == "CANNOT_SEND_EMPTY_MESSAGE"
    assert _stored(app, channel, only_file["attachments"][0]) == b"alone"


def test_deleting_messages_deletes_their_files(client, app, guild_channel):
    owner, _guild, channel = guild_channel
    one = _send(client, owner, channel, [("files[0]", "one.txt", b"one")]).json()
    assert client.delete(f"/v1/channels/{channel}/messages/{one['id']}", headers=owner.auth).status_code == 204
    assert _stored(app, channel, one["attachments"][0]) is None
    assert client.get(_path(one["attachments"][0]["url"])).status_code == 404

    pair = [_send(client, owner, channel, [("files[0]", f"{n}.txt", b"bulk")]).json() for n in range(2)]
    bulk = client.post(f"/v1/channels/{channel}/messages/bulk-delete", json={"messages": [m["id"] for m in pair]},
                       headers=owner.auth)
    assert bulk.status_code == 204
    assert [_stored(app, channel, m["attachments"][0]) for m in pair] == [None, None]


def test_media_urls_must_match_exactly(client, guild_channel, register, make_guild):
    owner, _guild, channel = guild_channel
    attachment = _send(client, owner, channel, [("files[0]", "a.txt", b"secret")]).json()["attachments"][0]
    path = urlsplit(attachment["url"]).path
    query = parse_qs(urlsplit(attachment["url"]).query)
    expires, signature = query["expires"][0], query["signature"][0]
    assert int(expires) >= time.time() + 24 * 3600 - 1 and int(expires) % 3600 == 0  # a day on, whole hours
    assert client.get(f"{path}?expires={expires}&signature={signature}").status_code == 200
    assert client.get(f"/v1{path}?expires={expires}&signature={signature}").status_code == 200  # the /v1 alias
    other_channel = make_guild(register())["system_channel_id"]
    for wrong in (f"{path}?expires={expires}&signature={'0' * 32}",
                  f"{path}?expires={int(expires) + 3600}&signature={signature}",  # a later expiry is not signed
                  path.replace("a.txt", "b.txt") + f"?expires={expires}&signature={signature}",
                  path.replace(channel, other_channel) + f"?expires={expires}&signature={signature}"):
        response = client.get(wrong)
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND", wrong
    assert client.get(f"{path}?expires={expires}").status_code == 400  # no signature at all


def test_media_urls_stop_working_when_they_expire(client, app, guild_channel):
    owner, _guild, channel = guild_channel
    message = _send(client, owner, channel, [("files[0]", "old.txt", b"old news")]).json()
    attachment = message["attachments"][0]
    settings = app.runtime.settings
    expired = int(time.time()) - 1
    signature = attachments.url_signature(settings, channel, attachment["id"], expired)  # correctly signed, but past
    path = urlsplit(attachment["url"]).path
    assert client.get(f"{path}?expires={expired}&signature={signature}").status_code == 404
    # Reading the message again hands out a URL that works.
    fresh = client.get(f"/v1/channels/{channel}/messages/{message['id']}", headers=owner.auth).json()
    assert client.get(_path(fresh["attachments"][0]["url"])).content == b"old news"


@pytest.mark.parametrize(("body", "message"), [
    (b"--b0undary\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a\"\r\n\r\ncut off",
     "closing boundary"),
    (b"no boundary anywhere", "not framed by the boundary"),
    (b"--b0undary\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0undary--\r\n", "no name"),
    (b"--b0undary\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\": \"\xff\xfe\"}"
     b"\r\n--b0undary--\r\n", "not valid UTF-8"),
    (b"--b0undary\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{not json"
     b"\r\n--b0undary--\r\n", "not valid JSON"),
    (b"--b0undary\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n"
     b"\r\n--b0undary--\r\n", "not valid JSON"),
])
def test_malformed_multipart_is_a_client_error(client, guild_channel, body, message):
    owner, _guild, channel = guild_channel
    response = _raw_multipart(client, owner, channel, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BAD_REQUEST" and message in response.json()["message"]


def test_multipart_headers_and_payload_are_checked(client, guild_channel):
    owner, _guild, channel = guild_channel
    no_boundary = client.post(f"/v1/channels/{channel}/messages", content=b"x",
                              headers={**owner.auth, "Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 400 and "boundary" in no_boundary.json()["message"]
    # payload_json meets the JSON form's schema, its errors named as in the JSON form.
    invalid = _send(client, owner, channel, [("files[0]", "a.txt", b"x")], {"content": 5})
    assert invalid.status_code == 400 and invalid.json()["errors"][0]["path"] == "content"
    # A message field sent as a form field of its own would be lost: it is refused instead.
    loose_field = client.post(f"/v1/channels/{channel}/messages", data={"content": "hello"},
                              files=[("files[0]", ("a.txt", b"x", "text/plain"))], headers=owner.auth)
    assert loose_field.status_code == 400 and loose_field.json()["errors"][0]["path"] == "content"
    not_utf8 = _raw_multipart(client, owner, channel, b"--b0undary\r\nContent-Disposition: form-data; "
                                                      b"name=\"files[0]\"; filename=\"\xff\xfe.txt\"\r\n\r\nhello"
                                                      b"\r\n--b0undary--\r\n")
    assert not_utf8.status_code == 400 and "not UTF-8" in not_utf8.json()["message"]


def test_json_send_is_unchanged(client, app, guild_channel):
    owner, _guild, channel = guild_channel
    before = {p for p in app.runtime.storage.root.rglob("*")}
    sent = client.post(f"/v1/channels/{channel}/messages", json={"content": "plain", "nonce": "n"}, headers=owner.auth)
    assert sent.status_code == 200 and sent.json()["attachments"] == [] and sent.json()["content"] == "plain"
    assert {p for p in app.runtime.storage.root.rglob("*")} == before
    empty = client.post(f"/v1/channels/{channel}/messages", json={"content": ""}, headers=owner.auth)
    assert empty.status_code == 400 and empty.json()["code"] == "CANNOT_SEND_EMPTY_MESSAGE"


def test_deleting_a_channel_or_guild_deletes_its_files(client, app, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    other = client.post(f"/v1/guilds/{guild['id']}/channels", json={"name": "second", "type": 0},
                        headers=owner.auth).json()["id"]
    in_channel = _send(client, owner, other, [("files[0]", "a.txt", b"in the channel")]).json()
    in_guild = _send(client, owner, channel, [("files[0]", "b.txt", b"elsewhere in the guild")]).json()

    assert client.delete(f"/v1/channels/{other}", headers=owner.auth).status_code == 204
    assert _stored(app, other, in_channel["attachments"][0]) is None
    assert _stored(app, channel, in_guild["attachments"][0]) == b"elsewhere in the guild"  # not this channel's

    deleted = client.post(f"/v1/guilds/{guild['id']}/delete", json={"password": PASSWORD}, headers=owner.auth)
    assert deleted.status_code == 204, deleted.text
    assert _stored(app, channel, in_guild["attachments"][0]) is None


def test_own_messages_deleted_in_bulk_take_their_files(client, app, guild_channel):
    owner, guild, channel = guild_channel
    sent = _send(client, owner, channel, [("files[0]", "mine.txt", b"mine")]).json()
    response = client.post(f"/v1/users/@me/guilds/{guild['id']}/messages/bulk-delete-mine",
                           json={"password": PASSWORD}, headers=owner.auth)
    assert response.status_code == 204, response.text
    assert _stored(app, channel, sent["attachments"][0]) is None


def test_a_rolled_back_delete_keeps_the_files(client, app, guild_channel):
    owner, _guild, channel = guild_channel
    sent = _send(client, owner, channel, [("files[0]", "kept.txt", b"kept")]).json()
    session = app.runtime.db.session
    try:
        session.execute(delete(Message).where(Message.id == int(sent["id"])))
        storage.delete_after_commit(session, attachments.storage_key(int(channel), int(sent["attachments"][0]["id"])))
        session.rollback()
        session.commit()  # a later commit of the same session must not delete what the rollback kept
    finally:
        app.runtime.db.remove()
    assert _stored(app, channel, sent["attachments"][0]) == b"kept"
    assert client.get(f"/v1/channels/{channel}/messages/{sent['id']}", headers=owner.auth).status_code == 200


def test_payload_json_with_every_kind_of_field(client, guild_channel):
    # Snowflake fields are a oneOf (string or integer): Connexion's own form coercion failed on them (500).
    owner, _guild, channel = guild_channel
    first = client.post(f"/v1/channels/{channel}/messages", json={"content": "first"}, headers=owner.auth).json()
    payload = {"content": "a reply with a file", "nonce": 7, "tts": False, "flags": 0, "embeds": [],
               "message_reference": {"message_id": first["id"], "channel_id": channel},
               "allowed_mentions": {"parse": [], "users": [owner.user_id], "replied_user": False},
               "attachments": [{"id": 0, "description": "notes"}]}
    response = _send(client, owner, channel, [("files[0]", "notes.txt", b"some notes")], payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["referenced_message"]["id"] == first["id"]
    assert body["attachments"][0]["description"] == "notes"


@pytest.mark.parametrize("parts", [
    # Two payload_json parts: one parser would keep the first, another the last.
    (b'--b0undary\r\nContent-Disposition: form-data; name="payload_json"\r\n\r\n{"content": "checked"}\r\n'
     b'--b0undary\r\nContent-Disposition: form-data; name="payload_json"\r\n\r\n{"content": {"x": 1}}\r\n'
     b"--b0undary--\r\n"),
    # Two Content-Disposition headers on one part: a file to one parser, payload_json to the other.
    (b'--b0undary\r\nContent-Disposition: form-data; name="payload_json"\r\n'
     b'Content-Disposition: form-data; name="files[0]"; filename="a.txt"\r\n\r\n{"content": ["zz"]}\r\n'
     b"--b0undary--\r\n"),
])
def test_ambiguous_multipart_is_refused_not_half_validated(client, guild_channel, parts):
    owner, _guild, channel = guild_channel
    response = _raw_multipart(client, owner, channel, parts)
    assert response.status_code == 400, response.text
    assert client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json() == []


def test_the_last_to_leave_a_group_dm_takes_its_files(client, app, register):
    from tests.test_dms import _befriend, _group, _recipient_url

    alice, bob = register(), register()
    _befriend(client, alice, bob)
    group = _group(client, alice, bob).json()["id"]
    sent = _send(client, bob, group, [("files[0]", "group.txt", b"for the group")]).json()
    assert client.delete(_recipient_url(group, bob), headers=bob.auth).status_code == 204
    assert _stored(app, group, sent["attachments"][0]) == b"for the group"  # alice is still there
    assert client.delete(_recipient_url(group, alice), headers=alice.auth).status_code == 204
    assert _stored(app, group, sent["attachments"][0]) is None
