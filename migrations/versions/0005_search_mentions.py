"""message search (full-text index) and the mentions inbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 14:05:00.000000

Full text is dialect-specific and has no model: on SQLite an FTS5 table over messages.content
(external content, so the text is stored once) kept in step by three triggers; on PostgreSQL a
GIN index on the expression ``to_tsvector('simple', content)``, which service.search repeats
word for word so the planner uses it. 'simple' (and FTS5's unicode61 without diacritic folding)
only lowercases: chat is written in every language, and English stemming would serve only one.
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END",
    # Only edits of the text touch the index: pins, flags and reactions leave it alone.
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]

# Mentions of messages sent before this revision: users, roles, and @everyone (whose role id is the guild id).
BACKFILL = {
    "sqlite": [
        "INSERT OR IGNORE INTO message_mentions (target_id, message_id, channel_id) "
        "SELECT CAST(j.value AS INTEGER), m.id, m.channel_id FROM messages m, json_each(m.{column}) j",
        "INSERT OR IGNORE INTO message_mentions (target_id, message_id, channel_id) "
        "SELECT m.guild_id, m.id, m.channel_id FROM messages m WHERE m.mention_everyone AND m.guild_id IS NOT NULL",
    ],
    "postgresql": [
        "INSERT INTO message_mentions (target_id, message_id, channel_id) "
        "SELECT CAST(j AS BIGINT), m.id, m.channel_id FROM messages m, json_array_elements_text(m.{column}) j "
        "ON CONFLICT DO NOTHING",
        "INSERT INTO message_mentions (target_id, message_id, channel_id) "
        "SELECT m.guild_id, m.id, m.channel_id FROM messages m WHERE m.mention_everyone AND m.guild_id IS NOT NULL "
        "ON CONFLICT DO NOTHING",
    ],
}


def upgrade() -> None:
    op.create_table('message_mentions',
    sa.Column('target_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('target_id', 'message_id')
    )
    with op.batch_alter_table('message_mentions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_mentions_message_id'), ['message_id'], unique=False)

    op.create_table('mention_dismissals',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'message_id')
    )
    with op.batch_alter_table('mention_dismissals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mention_dismissals_message_id'), ['message_id'], unique=False)

    dialect = op.get_bind().dialect.name
    from_id_list, from_everyone = BACKFILL[dialect]
    for column in ('mentions', 'mention_roles'):
        op.execute(from_id_list.format(column=column))
    op.execute(from_everyone)
    if dialect == 'sqlite':
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.create_index('ix_messages_content_fts', 'messages', [sa.text("to_tsvector('simple', content)")],
                        postgresql_using='gin')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for trigger in ('messages_fts_update', 'messages_fts_delete', 'messages_fts_insert'):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE messages_fts")
    else:
        op.drop_index('ix_messages_content_fts', table_name='messages')

    with op.batch_alter_table('mention_dismissals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mention_dismissals_message_id'))

    op.drop_table('mention_dismissals')
    with op.batch_alter_table('message_mentions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_mentions_message_id'))

    op.drop_table('message_mentions')
