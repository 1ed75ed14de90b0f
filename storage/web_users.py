"""The workbench's own table (created by migration 0003, session version by 0005): who may log in, and with which
role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Integer
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime

ROLES = ("reader", "analyst")


class WebUser(SQLModel, table=True):
    __tablename__ = "web_user"
    __table_args__ = (CheckConstraint("role IN ('reader', 'analyst')", name="ck_web_user_role"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    role: str  # reader: read-only; analyst: feedback and rules
    password_hash: str | None = None  # None: only usable behind the trusted header
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_login: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # Copied into the session cookie at login; raised by logout and password changes: older cookies stop working.
    session_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))

    @property
    def can_edit(self) -> bool:
        return self.role == "analyst"
