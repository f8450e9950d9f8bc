"""messages._wire (the hot path's hand-written message form) says exactly what serializers.message says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service import messages, serializers
from service.models import Message
from service.snowflake import snowflake_from_time

MOMENT = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def _message(**fields) -> Message:
    base = {"id": snowflake_from_time(MOMENT) | 7, "channel_id": 11, "guild_id": 22, "author_id": 33, "type": 0,
            "content": "hello", "flags": 0, "tts": False, "nonce": None, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "embeds": [], "sticker_ids": [], "referenced_message_id": None, "pinned_at": None,
            "edited_at": None}
    return Message(**{**base, **fields})


@pytest.mark.parametrize("fields", [
    {},
    {"guild_id": None, "nonce": "n-1", "type": 19, "flags": 4 | 4096, "tts": True},
    {"edited_at": MOMENT, "pinned_at": MOMENT, "mention_everyone": True, "content": "<@&5> é 🚀"},
    {"mention_roles": ["5", "6"], "embeds": [{"title": "t", "fields": [{"name": "a", "value": "b"}]}],
     "sticker_ids": ["77", "78"], "mentions": ["33"]},
], ids=["plain", "dm-reply-flags", "edited-pinned", "lists"])
def test_wire_matches_the_schema(fields):
    message = _message(**fields)
    assert messages._wire(message) == serializers.message.dump(message)
    assert list(messages._wire(message)) == list(serializers.message.dump(message))  # same key order too


def test_sent_and_listed_messages_agree(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    sent = client.post(f"/v1/channels/{channel}/messages", json={"content": "one", "nonce": "x1",
                                                                 "embeds": [{"title": "e"}]}, headers=owner.auth)
    assert sent.status_code == 200, sent.text
    listed = client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json()
    assert listed == [sent.json()]
    assert sent.json()["reactions"] == [] and sent.json()["attachments"] == []
