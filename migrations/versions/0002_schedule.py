"""events, reminders, delivery attempts and the in-app inbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=True),
        sa.Column("all_day", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("location", sa.String(300), nullable=False, server_default=""),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        sa.Column("rrule", sa.String(500), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_events_starts_at", "events", ["starts_at"])
    op.create_table(
        "reminders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("rrule", sa.String(500), nullable=True),
        sa.Column("dtstart", TZ, nullable=True),
        sa.Column("event_id", sa.String(32), sa.ForeignKey("events.id", ondelete="SET NULL"), nullable=True),
        sa.Column("lead_minutes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(500), nullable=True),
        sa.Column("email_to", sa.String(300), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="scheduled"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_fired_at", TZ, nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_reminders_status_due", "reminders", ["status", "due_at"])
    op.create_index("ix_reminders_event_id", "reminders", ["event_id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reminder_id", sa.String(32), sa.ForeignKey("reminders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("occurrence_at", TZ, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_delivery_attempts_reminder_id", "delivery_attempts", ["reminder_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reminder_id", sa.String(32), sa.ForeignKey("reminders.id", ondelete="SET NULL"), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("read_at", TZ, nullable=True),
    )
    op.create_index("ix_notifications_reminder_id", "notifications", ["reminder_id"])
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("delivery_attempts")
    op.drop_table("reminders")
    op.drop_table("events")
