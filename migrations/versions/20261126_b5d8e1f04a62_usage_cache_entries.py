"""usage report cache: each row counts its bookings of any status, so one space's figures can leave it

Revision ID: b5d8e1f04a62
Revises: 7c1e5b2a9d40
Create Date: 2026-11-26 18:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5d8e1f04a62'
down_revision = '7c1e5b2a9d40'
branch_labels = None
depends_on = None


def upgrade():
    # a cache: start it again rather than work out the new column for the rows there are
    op.execute('DELETE FROM usage_cache_state')
    op.execute('DELETE FROM usage_cache_row')
    op.execute('DELETE FROM usage_cache_piece')
    with op.batch_alter_table('usage_cache_row', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('entries', sa.Integer(), nullable=False))


def downgrade():
    op.execute('DELETE FROM usage_cache_state')
    op.execute('DELETE FROM usage_cache_row')
    op.execute('DELETE FROM usage_cache_piece')
    with op.batch_alter_table('usage_cache_row', schema=None) as batch_op:
        batch_op.drop_column('entries')
