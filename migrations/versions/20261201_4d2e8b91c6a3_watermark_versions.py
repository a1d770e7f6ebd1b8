"""watermark versions: a counter per space and per user that only goes up; feed token generations

Revision ID: 4d2e8b91c6a3
Revises: b5d8e1f04a62
Create Date: 2026-12-01 23:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4d2e8b91c6a3'
down_revision = 'b5d8e1f04a62'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('space', 'user'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('version', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_generation', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('feed_generation')
    for table in ('space', 'user'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('version')
