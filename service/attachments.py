"""Files sent with messages: read from the upload, named, identified, stored and served.

A message carries up to ``MAX_ATTACHMENTS`` files, sent as the multipart parts ``files[N]``
beside ``payload_json``; its ``attachments`` list describes them as Discord's does
(``{id: N, filename, description, flags}`` for ``files[N]``). One file holds at most
``MAX_ATTACHMENT_BYTES`` and all of a message's files together ``MAX_ATTACHMENTS_TOTAL_BYTES``
(413 ``FILE_SIZE_TOO_LARGE`` / ``MESSAGE_TOTAL_ATTACHMENT_SIZE_TOO_LARGE``, the reference's
codes). The edge lets only this route's multipart bodies past ``MAX_BODY_BYTES``, up to
``upload_body_limit``.

The content type comes from the bytes, never from the client: PNG, JPEG, GIF and WebP count
as images only when Pillow decodes them within service.images' pixel limits (then width and
height are known; an image beyond them is still accepted, as a plain file); PDF, zip, MP4,
QuickTime, WebM, Matroska, Ogg, FLAC, MP3 and WAV by their magic numbers; UTF-8 text as
text/plain; anything else application/octet-stream.

Files live in storage under ``attachments/<channel_id>/<attachment_id>`` and are served at
``<MEDIA_URL>/attachments/<channel_id>/<attachment_id>/<filename>?expires=...&signature=...`` (the
media proxy's path) without authentication: browsers load them with ``<img>`` and ``<video>``,
which send no Authorization header, so as on Discord's CDN the URL itself is the capability.
Snowflake ids alone would make a poor one (they are predictable from the message's), so the URL
also carries an HMAC of the two ids and its expiry under ``FLUXER_SECRET_KEY``; it stops working
``MEDIA_URL_TTL_SECONDS`` after it was handed out.
"""

from __future__ import annotations

import codecs
import hmac
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from sqlalchemy import select

from service import images, serializers
from service.config import Settings
from service.crypto import keyed_hash
from service.errors import APIError, field_error, not_found
from service.middleware import API_PREFIX
from service.models import Attachment, Message
from service.runtime import current
from service.storage import PendingFiles
from service.users import parse_snowflake

MAX_ATTACHMENTS = 10
MAX_FILENAME_LENGTH = 255  # the column's size
MAX_KEPT_EXTENSION = 16  # a shortened filename keeps an extension up to this long
IS_SPOILER, IS_ANIMATED = 1 << 3, 1 << 5
SPOILER_PREFIX = "SPOILER_"
URL_EXPIRY_STEP = 3600  # seconds: media URL expiries are whole hours
FILE_FIELD = re.compile(r"^files\[(0|[1-9][0-9]{0,8})\]$")
# POST /channels/{channel_id}/messages (send_message), after the edge's /v1 alias.
UPLOAD_PATH = re.compile(rf"^{API_PREFIX}/channels/[^/]+/messages/?$")

OCTET_STREAM = "application/octet-stream"
PLAIN_TEXT = "text/plain; charset=utf-8"
IMAGE_TYPES = frozenset(images.CONTENT_TYPES.values())
# (offset, bytes) pairs that must all match, and the type they mean.
SIGNATURES = (
    (((0, b"\x89PNG\r\n\x1a\n"),), "image/png"),
    (((0, b"\xff\xd8\xff"),), "image/jpeg"),
    (((0, b"GIF87a"),), "image/gif"),
    (((0, b"GIF89a"),), "image/gif"),
    (((0, b"RIFF"), (8, b"WEBP")), "image/webp"),
    (((0, b"%PDF-"),), "application/pdf"),
    (((0, b"PK\x03\x04"),), "application/zip"),
    (((0, b"PK\x05\x06"),), "application/zip"),  # an empty archive
    (((0, b"OggS"),), "audio/ogg"),
    (((0, b"fLaC"),), "audio/flac"),
    (((0, b"ID3"),), "audio/mpeg"),
    (((0, b"RIFF"), (8, b"WAVE")), "audio/wav"),
)
EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # WebM and Matroska; the header's DocType tells them apart
# ISO media files (``ftyp`` at offset 4) by their major brand; other brands (HEIC, AVIF, ...) are plain files.
ISO_MEDIA_BRANDS = {
    **dict.fromkeys((b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V ",
                     b"mmp4"), "video/mp4"),
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
}
# ASCII control bytes that text files do not contain (tab, line feed, form feed and carriage return
# are allowed); no byte of a multi-byte UTF-8 sequence is below 0x80, so the test on bytes is exact.
BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
UTF8_CHECK_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    field: str  # the part's name, ``files[N]``
    filename: str  # the name the client gave the file
    stream: BinaryIO


@dataclass(frozen=True)
class Identified:
    content_type: str
    width: int | None = None
    height: int | None = None
    animated: bool = False


def upload_body_limit(settings: Settings) -> int:
    """The largest multipart message body: every file at its limit, plus room for payload_json and the framing."""
    return settings.max_attachments_total_bytes + settings.max_body_bytes


# --- Naming and identifying ---------------------------------------------------------------


def safe_filename(name: str) -> str:
    """The name without folders, control or formatting characters (no right-to-left tricks) or
    leading dots, at most MAX_FILENAME_LENGTH characters (keeping a short extension)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().lstrip(".")
    if len(name) > MAX_FILENAME_LENGTH:
        _stem, dot, extension = name.rpartition(".")
        kept = dot + extension if dot and len(extension) <= MAX_KEPT_EXTENSION else ""
        name = name[:MAX_FILENAME_LENGTH - len(kept)] + kept
    return name or "unknown"


def _is_utf8_text(data: bytes) -> bool:
    if not data or BINARY_BYTES.search(data):
        return False
    decoder = codecs.getincrementaldecoder("utf-8")()  # in chunks: no full-size str of a large file
    view = memoryview(data)
    try:
        for start in range(0, len(data), UTF8_CHECK_CHUNK):
            decoder.decode(view[start:start + UTF8_CHECK_CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff(data: bytes) -> str:
    """The content type the bytes' magic number names; text/plain for UTF-8 text; else application/octet-stream."""
    for checks, content_type in SIGNATURES:
        if all(data.startswith(magic, offset) for offset, magic in checks):
            return content_type
    if data[4:8] == b"ftyp":
        return ISO_MEDIA_BRANDS.get(data[8:12], OCTET_STREAM)
    if data.startswith(EBML_MAGIC):
        return "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    return PLAIN_TEXT if _is_utf8_text(data) else OCTET_STREAM


def identify(data: bytes, field: str) -> Identified:
    content_type = sniff(data)
    if content_type not in IMAGE_TYPES:
        return Identified(content_type)
    try:
        # No limit on a side: images.inspect still holds every frame to its pixel limits before decoding.
        image = images.inspect(data, field, max_width=images.MAX_PIXELS, max_height=images.MAX_PIXELS)
    except APIError:  # not an image Pillow vouches for (or beyond its limits): a file to download
        return Identified(OCTET_STREAM)
    return Identified(image.content_type, image.width, image.height, image.animated)


# --- Storing --------------------------------------------------------------------------------


def storage_key(channel_id: int, attachment_id: int) -> str:
    return f"attachments/{channel_id}/{attachment_id}"


def storage_keys_of(session, *conditions) -> list[str]:
    """The stored files of the messages matching ``conditions`` (on Message), e.g. to delete them
    with the messages: ``storage_keys_of(session, Message.channel_id == channel.id)``."""
    rows = session.execute(select(Message.channel_id, Attachment.id)
                           .join(Message, Message.id == Attachment.message_id).where(*conditions))
    return [storage_key(channel_id, attachment_id) for channel_id, attachment_id in rows]


def _indexed(uploads: Sequence[Upload], described: list[dict]) -> list[tuple[Upload, dict]]:
    """Each upload with its ``attachments`` entry (``id`` N describes ``files[N]``)."""
    if len(uploads) > MAX_ATTACHMENTS:
        raise field_error("files", "BASE_TYPE_MAX_LENGTH", f"A message carries at most {MAX_ATTACHMENTS} files")
    by_index: dict[int, Upload] = {}
    for upload in uploads:
        match = FILE_FIELD.match(upload.field)
        if match is None:
            raise field_error(upload.field, "BASE_TYPE_INVALID", "File parts are named files[N], N = 0, 1, 2, ...")
        if int(match[1]) in by_index:
            raise field_error(upload.field, "BASE_TYPE_INVALID", "Each files[N] may be sent once")
        by_index[int(match[1])] = upload
    descriptions: dict[int, dict] = {}
    for position, entry in enumerate(described):
        index = int(entry["id"])
        if index not in by_index:
            raise field_error(f"attachments.{position}.id", "BASE_TYPE_INVALID",
                              f"No file was sent as files[{index}]")
        descriptions[index] = entry
    return [(upload, descriptions.get(index, {})) for index, upload in by_index.items()]


def _read(upload: Upload, limit: int) -> bytes:
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise APIError(413, "FILE_SIZE_TOO_LARGE", f"{upload.field} is larger than {limit} bytes", max_size=limit)
    return data


def store_files(rt, pending: PendingFiles, channel_id: int, uploads: Sequence[Upload],
                described: list[dict]) -> list[Attachment]:
    """Read, check, identify and store a new message's files; answers their rows, for the caller to
    give the message's id and add.

    One file is in memory at a time. ``pending`` deletes the stored files again unless the
    message commits.
    """
    settings = rt.settings
    rows, total = [], 0
    for upload, description in _indexed(uploads, described):
        data = _read(upload, settings.max_attachment_bytes)
        total += len(data)
        if total > settings.max_attachments_total_bytes:
            raise APIError(413, "MESSAGE_TOTAL_ATTACHMENT_SIZE_TOO_LARGE",
                           f"A message's files hold at most {settings.max_attachments_total_bytes} bytes together",
                           max_size=settings.max_attachments_total_bytes)
        found = identify(data, upload.field)
        filename = safe_filename(description.get("filename") or upload.filename)
        flags = (int(description.get("flags") or 0) & IS_SPOILER) | (IS_ANIMATED if found.animated else 0)
        if filename.startswith(SPOILER_PREFIX):
            flags |= IS_SPOILER
        row = Attachment(id=rt.new_id(), filename=filename, content_type=found.content_type, size=len(data),
                         width=found.width, height=found.height, flags=flags, description=description.get("description"))
        pending.put(storage_key(channel_id, row.id), data, found.content_type)
        rows.append(row)
    return rows


# --- Serving --------------------------------------------------------------------------------


def url_signature(settings: Settings, channel_id: int | str, attachment_id: int | str, expires: int | str) -> str:
    """What a media URL must carry to be served: not derivable from the ids without the server's secret."""
    return keyed_hash(settings.secret_key, f"attachment:{channel_id}:{attachment_id}:{expires}")[:32]


def url_expiry(settings: Settings, now: float | None = None) -> int:
    """When URLs handed out now stop working: at least the TTL away, rounded up to the hour, so a
    file's URL stays the same for an hour at a time and caches can keep it."""
    earliest = int(time.time() if now is None else now) + settings.media_url_ttl_seconds
    return -(-earliest // URL_EXPIRY_STEP) * URL_EXPIRY_STEP


def attachment_json(row: Attachment, channel_id: int) -> dict:
    """An attachment as messages show it, with the URL that serves it (until ``expires``)."""
    settings = current().settings
    expires = url_expiry(settings)
    url = (f"{settings.media_url.rstrip('/')}/attachments/{channel_id}/{row.id}/{quote(row.filename, safe='')}"
           f"?expires={expires}&signature={url_signature(settings, channel_id, row.id, expires)}")
    return {**serializers.dump_attachment(row), "url": url, "proxy_url": url}


def shows_inline(content_type: str) -> bool:
    """Browsers may display these in place; anything else is offered as a download."""
    return content_type.startswith(("image/", "video/", "audio/", "text/plain"))


def open_stored(rt, session, channel_id: str, attachment_id: str, filename: str, expires: int,
                signature: str) -> tuple[Attachment, BinaryIO]:
    """The attachment a media URL names and a stream of its bytes.

    Anything short of an exact match (signature, expiry still ahead, channel, filename, a stored
    file) is 404, so a URL tells a stranger nothing that its signature did not already prove, and
    someone who lost access to the channel keeps a URL only until it expires.
    """
    unknown = not_found("NOT_FOUND", "attachment")
    expected = url_signature(rt.settings, channel_id, attachment_id, expires)
    if not hmac.compare_digest(signature.encode(), expected.encode()) or expires <= time.time():
        raise unknown
    channel = parse_snowflake(channel_id, "attachment", "NOT_FOUND")
    row = session.scalar(select(Attachment).join(Message, Message.id == Attachment.message_id)
                         .where(Attachment.id == parse_snowflake(attachment_id, "attachment", "NOT_FOUND"),
                                Message.channel_id == channel))
    stream = rt.storage.open(storage_key(channel, row.id)) if row is not None and row.filename == filename else None
    if stream is None:
        raise unknown
    return row, stream
