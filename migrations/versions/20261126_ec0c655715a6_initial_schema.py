"""initial schema

Revision ID: ec0c655715a6
Revises: 
Create Date: 2026-11-26 11:10:02.036673

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ec0c655715a6'
down_revision = None
branch_labels = None
depends_on = None

# the same statement as booking.bookings.models.EXCLUDE_OVERLAP, frozen here as migrations must be
EXCLUDE_OVERLAP = (
    "ALTER TABLE booking ADD CONSTRAINT booking_no_overlap EXCLUDE USING gist "
    "(space_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
    "WHERE (exclusive AND status IN ('pending', 'confirmed'))"
)


def upgrade():
    # btree_gist lets one GiST index combine "same space" (=) with "overlapping time" (&&)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table('location',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('address_zh', sa.String(length=300), nullable=False),
    sa.Column('address_en', sa.String(length=300), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location')),
    sa.UniqueConstraint('slug', name=op.f('uq_location_slug'))
    )
    op.create_table('organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation')),
    sa.UniqueConstraint('slug', name=op.f('uq_organisation_slug'))
    )
    op.create_table('space',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('bookable', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('color', sa.String(length=32), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('unit_label_zh', sa.String(length=32), nullable=False),
    sa.Column('unit_label_en', sa.String(length=32), nullable=False),
    sa.Column('people_capacity', sa.Integer(), nullable=True),
    sa.Column('time_mode', sa.String(length=16), nullable=False),
    sa.Column('grid_minutes', sa.Integer(), nullable=False),
    sa.Column('fixed_slots', sa.JSON(), nullable=False),
    sa.Column('opening_hours', sa.JSON(), nullable=False),
    sa.Column('min_duration_minutes', sa.Integer(), nullable=False),
    sa.Column('max_duration_minutes', sa.Integer(), nullable=False),
    sa.Column('min_notice_minutes', sa.Integer(), nullable=False),
    sa.Column('max_advance_days', sa.Integer(), nullable=False),
    sa.Column('max_units_per_booking', sa.Integer(), nullable=False),
    sa.Column('max_future_bookings', sa.Integer(), nullable=True),
    sa.Column('approval', sa.String(length=16), nullable=False),
    sa.Column('approval_over_minutes', sa.Integer(), nullable=True),
    sa.Column('titles_public', sa.Boolean(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("approval IN ('never', 'always', 'over_duration')", name=op.f('ck_space_known_approval')),
    sa.CheckConstraint("time_mode IN ('grid', 'whole_days', 'fixed_slots')", name=op.f('ck_space_known_time_mode')),
    sa.CheckConstraint('capacity >= 1', name=op.f('ck_space_capacity_positive')),
    sa.CheckConstraint('grid_minutes > 0', name=op.f('ck_space_grid_positive')),
    sa.CheckConstraint('max_units_per_booking >= 1', name=op.f('ck_space_units_per_booking_positive')),
    sa.CheckConstraint('min_duration_minutes <= max_duration_minutes', name=op.f('ck_space_durations_ordered')),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_space_location_id_location')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_space')),
    sa.UniqueConstraint('slug', name=op.f('uq_space_slug'))
    )
    with op.batch_alter_table('space', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_space_location_id'), ['location_id'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('session_token', sa.String(length=64), nullable=False),
    sa.Column('feed_token_hash', sa.String(length=64), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('is_demo', sa.Boolean(), nullable=False),
    sa.CheckConstraint("language IN ('zh_Hans_CN', 'en')", name=op.f('ck_user_known_language')),
    sa.CheckConstraint("role IN ('member', 'staff', 'admin')", name=op.f('ck_user_known_role')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_user_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('email', name=op.f('uq_user_email')),
    sa.UniqueConstraint('feed_token_hash', name=op.f('uq_user_feed_token_hash')),
    sa.UniqueConstraint('session_token', name=op.f('uq_user_session_token'))
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('closure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_closure_ends_after_start')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_closure_created_by_id_user')),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_closure_location_id_location')),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_closure_space_id_space')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_closure'))
    )
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.create_index('ix_closure_location_span', ['location_id', 'start_at', 'end_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_closure_space_id'), ['space_id'], unique=False)

    op.create_table('series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['requester_id'], ['user.id'], name=op.f('fk_series_requester_id_user')),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_series_space_id_space')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_series'))
    )
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_series_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_series_space_id'), ['space_id'], unique=False)

    op.create_table('booking',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('series_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('attendees', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('title_public', sa.Boolean(), nullable=False),
    sa.Column('exclusive', sa.Boolean(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'rejected', 'cancelled', 'expired')", name=op.f('ck_booking_known_status')),
    sa.CheckConstraint('attendees >= 1', name=op.f('ck_booking_attendees_positive')),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_booking_ends_after_start')),
    sa.CheckConstraint('revision >= 0', name=op.f('ck_booking_revision_non_negative')),
    sa.CheckConstraint('units >= 1', name=op.f('ck_booking_units_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_booking_created_by_id_user')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_booking_decided_by_id_user')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_booking_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['requester_id'], ['user.id'], name=op.f('fk_booking_requester_id_user')),
    sa.ForeignKeyConstraint(['series_id'], ['series.id'], name=op.f('fk_booking_series_id_series')),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_booking_space_id_space')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking'))
    )
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_booking_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index('ix_booking_requester_start', ['requester_id', 'start_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_booking_series_id'), ['series_id'], unique=False)
        batch_op.create_index('ix_booking_space_requester_start', ['space_id', 'requester_id', 'start_at'], unique=False)
        batch_op.create_index('ix_booking_space_start', ['space_id', 'start_at', 'end_at'], unique=False)
        batch_op.create_index('ix_booking_start', ['start_at'], unique=False)
        batch_op.create_index('ix_booking_status_start', ['status', 'start_at'], unique=False)

    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('subject_user_id', sa.Integer(), nullable=True),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], name=op.f('fk_audit_event_actor_id_user')),
    sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_audit_event_booking_id_booking')),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_audit_event_space_id_space')),
    sa.ForeignKeyConstraint(['subject_user_id'], ['user.id'], name=op.f('fk_audit_event_subject_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index('ix_audit_event_at', ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_space_id'), ['space_id'], unique=False)

    op.create_table('outgoing_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('ics', sa.Text(), nullable=True),
    sa.Column('ics_method', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], name=op.f('fk_outgoing_mail_booking_id_booking')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_mail'))
    )
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoing_mail_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index('ix_outgoing_mail_unsent', ['sent_at', 'id'], unique=False)



    # Hand-written: autogenerate cannot render this. Exclusive spaces never hold two
    # overlapping bookings, even if a code path forgot the space lock (SQLSTATE 23P01).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(EXCLUDE_OVERLAP)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE booking DROP CONSTRAINT IF EXISTS booking_no_overlap")
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoing_mail_unsent')
        batch_op.drop_index(batch_op.f('ix_outgoing_mail_booking_id'))

    op.drop_table('outgoing_mail')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_space_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_booking_id'))
        batch_op.drop_index('ix_audit_event_at')
        batch_op.drop_index(batch_op.f('ix_audit_event_actor_id'))

    op.drop_table('audit_event')
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_index('ix_booking_status_start')
        batch_op.drop_index('ix_booking_start')
        batch_op.drop_index('ix_booking_space_start')
        batch_op.drop_index(batch_op.f('ix_booking_series_id'))
        batch_op.drop_index('ix_booking_space_requester_start')
        batch_op.drop_index('ix_booking_requester_start')
        batch_op.drop_index(batch_op.f('ix_booking_organisation_id'))

    op.drop_table('booking')
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_series_space_id'))
        batch_op.drop_index(batch_op.f('ix_series_requester_id'))

    op.drop_table('series')
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_closure_space_id'))
        batch_op.drop_index('ix_closure_location_span')

    op.drop_table('closure')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_organisation_id'))

    op.drop_table('user')
    with op.batch_alter_table('space', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_space_location_id'))

    op.drop_table('space')
    op.drop_table('organisation')
    op.drop_table('location')

