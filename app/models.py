"""Import every model so `Base.metadata` is complete (Alembic and tests use this)."""

from app.audit.models import AuditEntry
from app.db import Base
from app.inventory.models import Consent, Customer, Device, TopologyNode, customer_devices
from app.maintenance.models import Maintenance
from app.notifications.models import OutboxRow, SurveyResponse
from app.outages.models import Outage, TimelineEntry
from app.rules.models import Rule, RuleVersion
from app.tokens.models import StoredToken

__all__ = [
    "AuditEntry",
    "Base",
    "Consent",
    "Customer",
    "Device",
    "Maintenance",
    "OutboxRow",
    "SurveyResponse",
    "Outage",
    "Rule",
    "RuleVersion",
    "StoredToken",
    "TimelineEntry",
    "TopologyNode",
    "customer_devices",
]
