"""Import every model so `Base.metadata` is complete (Alembic and tests use this)."""

from app.db import Base
from app.inventory.models import Customer, Device, TopologyNode, customer_devices
from app.maintenance.models import Maintenance
from app.notifications.models import OutboxRow, SurveyResponse
from app.outages.models import Outage, TimelineEntry
from app.rules.models import Rule, RuleVersion

__all__ = [
    "Base",
    "Customer",
    "Device",
    "Maintenance",
    "OutboxRow",
    "SurveyResponse",
    "Outage",
    "Rule",
    "RuleVersion",
    "TimelineEntry",
    "TopologyNode",
    "customer_devices",
]
