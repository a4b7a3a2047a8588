"""Topology (region > hub > node), devices and customers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UtcDateTime

customer_devices = Table(
    "customer_devices",
    Base.metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class TopologyNode(Base):
    """A place in the network: a region, a hub under it, or a node under a hub."""

    __tablename__ = "topology_nodes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("topology_nodes.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(256))
    # Display names per language ({"en": "Riverside", "de": "Flussufer"}); see domain/places.
    names: Mapped[dict[str, str] | None] = mapped_column(JSON)


class Device(Base):
    """A reporting element (modem, set-top box, ONT…) attached to one topology node."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    node_id: Mapped[str] = mapped_column(
        ForeignKey("topology_nodes.id", ondelete="CASCADE"), index=True
    )
    services: Mapped[list[str]] = mapped_column(JSON, default=list)


class Customer(Base):
    """Someone to tell: how to reach them, in which language, and when not to."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(16), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str | None] = mapped_column(String(35))  # BCP 47; None: from the zone
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    quiet_hours: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The channels the inventory lists as opted out (the operator's word), as last imported.
    # What the customer chose themselves is in `consents`; see app/inventory/consent.py.
    opt_outs: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))

    devices: Mapped[list[Device]] = relationship(secondary=customer_devices, lazy="raise")


class Consent(Base):
    """One choice about one channel of one customer: opted out or back in, when and how.

    Kept apart from the customer row, and with no foreign key to it, so that no inventory
    import can clear it: a customer removed by a replacement and added back keeps their STOP.
    The latest record per customer × channel among the customer's own decides (see
    `app.inventory.consent`).
    """

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_customer_id_channel", "customer_id", "channel", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    opted_out: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
