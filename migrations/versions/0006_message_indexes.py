"""messages: index (author_id, id) in place of author_id alone, and a partial index of pins

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:00:00.000000

An author's messages are read newest first or from a point in time on (slowmode's last message,
deleting one's own messages, a ban's deletion window): with the id in the index these are range
scans that stop early, where author_id alone visited every message the author ever sent.
Pins are a handful among a channel's messages: the partial index holds only them, so listing,
counting and the newest pin's time (on every channel object) never read the rest.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_author_id')
        batch_op.create_index('ix_messages_author_id_id', ['author_id', 'id'], unique=False)
        batch_op.create_index('ix_messages_channel_pinned', ['channel_id', 'pinned_at'], unique=False,
                              sqlite_where=sa.text('pinned_at IS NOT NULL'),
                              postgresql_where=sa.text('pinned_at IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_channel_pinned')
        batch_op.drop_index('ix_messages_author_id_id')
        batch_op.create_index('ix_messages_author_id', ['author_id'], unique=False)
