"""usage report cache: figures per local day, derived lazily from the bookings

Revision ID: 7c1e5b2a9d40
Revises: 3f9a2c41d7b8
Create Date: 2026-11-26 15:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e5b2a9d40'
down_revision = '3f9a2c41d7b8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('usage_cache_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_mark', sa.Integer(), nullable=False),
    sa.Column('mark_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mark_booking_id', sa.Integer(), nullable=True),
    sa.Column('mark_action', sa.String(length=32), nullable=True),
    sa.Column('shape', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_cache_state'))
    )
    op.create_table('usage_cache_row',
    sa.Column('kind', sa.String(length=1), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('key', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('week', sa.Date(), nullable=False),
    sa.Column('bookings', sa.Integer(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('cancellations', sa.Integer(), nullable=False),
    sa.Column('late_cancellations', sa.Integer(), nullable=False),
    sa.Column('micros', sa.BigInteger(), nullable=False),
    sa.Column('unit_micros', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'day', 'key', name=op.f('pk_usage_cache_row'))
    )
    op.create_table('usage_cache_piece',
    sa.Column('booking_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('booking_id', name=op.f('pk_usage_cache_piece'))
    )
    with op.batch_alter_table('usage_cache_piece', schema=None) as batch_op:
        batch_op.create_index('ix_usage_cache_piece_day', ['day'], unique=False)


def downgrade():
    with op.batch_alter_table('usage_cache_piece', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_cache_piece_day')
    op.drop_table('usage_cache_piece')
    op.drop_table('usage_cache_row')
    op.drop_table('usage_cache_state')
