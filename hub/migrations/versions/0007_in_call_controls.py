"""in-call controls: a call's conference, hold and mute, supervisor modes, transfers

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('conference_sid', sa.String(length=34), nullable=True))
        batch.add_column(sa.Column('on_hold', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch.add_column(sa.Column('muted', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch.add_column(sa.Column('monitor_mode', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('transfer_kind', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('transferred_by', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        for column in ('transferred_by', 'transfer_kind', 'monitor_mode', 'muted', 'on_hold', 'conference_sid'):
            batch.drop_column(column)
