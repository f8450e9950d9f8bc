"""Uploaded images (``Base64Image``): decoded and checked by really decoding them with Pillow.

An image arrives as a data URI (``data:image/png;base64,...``) or bare base64. It is
accepted only when Pillow decodes every frame of it as PNG (APNG included), JPEG, GIF or
WebP within the caller's byte and dimension limits. The declared media type of a data URI
is ignored: the bytes decide. Every refusal is 400 ``INVALID_FORM_BODY`` naming the field.

Decompression bombs: the header gives the size before anything is decoded, so images over
the caller's dimensions (and over ``MAX_PIXELS`` whatever the caller says) are refused
unread, and an animation may decode at most ``MAX_FRAMES`` frames and ``MAX_TOTAL_PIXELS``
pixels over all its frames.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass

from PIL import Image, ImageSequence

from service.errors import APIError, field_error
from service.storage import Storage

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "GIF": "image/gif",
                 "WEBP": "image/webp"}
ALLOWED_NAMES = "PNG, JPEG, GIF or WebP"
ANIMATED_FORMATS = frozenset({"PNG", "GIF", "WEBP"})  # APNG reports itself as PNG
MAX_PIXELS = 4096 * 4096  # one frame, whatever the caller allows
MAX_FRAMES = 1000
MAX_TOTAL_PIXELS = 100_000_000  # decoded over all frames of an animation

DATA_URI = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*),(.*)$", re.DOTALL | re.IGNORECASE)
WHITESPACE = re.compile(r"\s+")

# Guild images: (byte limit, max width, max height).
GUILD_IMAGE_LIMITS = {
    "icon": (1024 * 1024, 1024, 1024),
    "banner": (1024 * 1024, 4096, 4096),
    "splash": (1024 * 1024, 4096, 4096),
}


@dataclass(frozen=True)
class DecodedImage:
    data: bytes
    content_type: str
    width: int
    height: int
    animated: bool

    @property
    def extension(self) -> str:
        return self.content_type.split("/", 1)[1]


def _kib(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} bytes"


def decode_base64(value: str, field: str) -> bytes:
    """The bytes of a data URI or of bare base64 (padding optional, whitespace ignored)."""
    if not isinstance(value, str):
        raise field_error(field, "BASE_TYPE_INVALID", "An image must be a base64 string or a data URI")
    text = value.strip()
    if text[:5].lower() == "data:":
        match = DATA_URI.match(text)
        if not match or "base64" not in [p.strip().lower() for p in match.group(2).split(";")]:
            raise field_error(field, "INVALID_IMAGE", "A data URI image must be base64-encoded (data:image/png;base64,...)")
        media_type = match.group(1).strip().lower()
        if media_type and not media_type.startswith("image/"):
            raise field_error(field, "INVALID_IMAGE", f"A data URI of type {media_type} is not an image")
        text = match.group(3)
    text = WHITESPACE.sub("", text)
    text += "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise field_error(field, "INVALID_BASE64", "The image is not valid base64") from None
    if not data:
        raise field_error(field, "INVALID_IMAGE", "The image is empty")
    return data


def decode(value: str, field: str, *, max_bytes: int, max_width: int, max_height: int) -> DecodedImage:
    """Decode and check a Base64Image; ``field`` is the body path named in any error."""
    # Refuse an oversized upload before decoding its base64 (4 characters carry 3 bytes).
    if isinstance(value, str) and len(value) > (max_bytes + 2) // 3 * 4 + 4096:
        raise field_error(field, "FILE_SIZE_TOO_LARGE", f"The image must be at most {_kib(max_bytes)}")
    data = decode_base64(value, field)
    if len(data) > max_bytes:
        raise field_error(field, "FILE_SIZE_TOO_LARGE", f"The image must be at most {_kib(max_bytes)}")
    return inspect(data, field, max_width=max_width, max_height=max_height)


def inspect(data: bytes, field: str, *, max_width: int, max_height: int) -> DecodedImage:
    """Check raw image bytes the way ``decode`` does, after the base64 step."""
    try:
        # Image.open reads the header only; _check refuses oversized images before any decoding.
        # (Pillow itself refuses beyond twice its MAX_IMAGE_PIXELS; ours is far lower.)
        with Image.open(io.BytesIO(data)) as image:
            return _check(image, data, field, max_width, max_height)
    except APIError:
        raise
    except Image.DecompressionBombError:
        raise field_error(field, "IMAGE_TOO_LARGE", "The image has too many pixels") from None
    except Exception:  # Pillow raises many kinds of errors on hostile input; all mean "not an image"
        raise field_error(field, "INVALID_IMAGE", f"The data is not a valid {ALLOWED_NAMES} image") from None


def _check(image: Image.Image, data: bytes, field: str, max_width: int, max_height: int) -> DecodedImage:
    content_type = CONTENT_TYPES.get(image.format or "")
    if content_type is None:
        raise field_error(field, "INVALID_IMAGE_FORMAT",
                          f"Images must be {ALLOWED_NAMES}, not {image.format or 'an unknown format'}")
    width, height = image.size
    if width < 1 or height < 1:
        raise field_error(field, "INVALID_IMAGE", "The image has no pixels")
    if width > max_width or height > max_height or width * height > MAX_PIXELS:
        raise field_error(field, "IMAGE_DIMENSIONS_TOO_LARGE",
                          f"The image is {width}x{height}; at most {max_width}x{max_height} is allowed")
    # A multi-picture JPEG (MPO: phones, stereo cameras) is a still image; its first picture is the photo.
    animated = image.format in ANIMATED_FORMATS and bool(getattr(image, "is_animated", False))
    frames = int(getattr(image, "n_frames", 1)) if animated else 1
    if frames > MAX_FRAMES or frames * width * height > MAX_TOTAL_PIXELS:
        raise field_error(field, "IMAGE_TOO_LARGE", f"The animation has too many frames ({frames})")
    if animated:
        # A frame may claim a bigger canvas than the header did: every frame is held to the limits.
        total = 0
        for frame in ImageSequence.Iterator(image):
            frame_width, frame_height = frame.size
            if frame_width > max_width or frame_height > max_height or frame_width * frame_height > MAX_PIXELS:
                raise field_error(field, "IMAGE_DIMENSIONS_TOO_LARGE",
                                  f"A frame is {frame_width}x{frame_height}; at most {max_width}x{max_height} is allowed")
            total += frame_width * frame_height
            if total > MAX_TOTAL_PIXELS:
                raise field_error(field, "IMAGE_TOO_LARGE", "The animation has too many pixels")
            frame.load()
    else:
        image.load()
    return DecodedImage(data, content_type, width, height, animated)


def content_hash(image: DecodedImage) -> str:
    """The Discord-style asset hash: hex digest of the bytes, ``a_`` first when animated."""
    digest = hashlib.sha256(image.data).hexdigest()[:32]
    return f"a_{digest}" if image.animated else digest


def guild_image_key(guild_id: int, kind: str, image_hash: str) -> str:
    """Where a guild's icon, banner or splash with this hash is stored."""
    return f"{kind}s/{guild_id}/{image_hash}"


def store_guild_image(storage: Storage, guild_id: int, kind: str, value: str, *, field: str | None = None) -> str:
    """Validate a guild ``icon``, ``banner`` or ``splash`` and store it; answers the hash for the row.

    The key is content-addressed (``icons/<guild_id>/<hash>``), so storing the same image
    twice writes one file and a client's cached URL stays valid until the image changes.
    """
    if kind not in GUILD_IMAGE_LIMITS:
        raise ValueError(f"unknown guild image kind {kind!r}")
    max_bytes, max_width, max_height = GUILD_IMAGE_LIMITS[kind]
    image = decode(value, field or kind, max_bytes=max_bytes, max_width=max_width, max_height=max_height)
    image_hash = content_hash(image)
    storage.put(guild_image_key(guild_id, kind, image_hash), image.data, image.content_type)
    return image_hash
