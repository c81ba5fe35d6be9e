"""The data-type registry and the tables it names.

Each data type says where its rows live (a `Storage`) and whose they are (the
owner columns). The engine groups types by storage so that a pair costs a few
statements per table, not per type. Adding a data type is one `DataType`
entry, plus a table and a `Storage` when it does not fit `owned_record`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise import fields
from tortoise.models import Model

from models.fences.tortoise import table_name


class Product(str, enum.Enum):
    QM = "QM"
    CLASSIC_WFM = "CLASSIC_WFM"


class Policy(str, enum.Enum):
    COMBINE = "COMBINE"
    OVERWRITE = "OVERWRITE"


class OwnedRecord(Model):
    """Rows of every data type that needs nothing more than an owner."""

    id = fields.BigIntField(primary_key=True)
    data_type = fields.CharField(max_length=64)
    owner: fields.ForeignKeyRelation = fields.ForeignKeyField("models.User", related_name="owned_records", db_index=False)
    payload = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "owned_record"
        indexes = (("owner_id", "data_type"),)


class Evaluation(Model):
    """QM evaluations. The evaluator and the approver both own one, and both move."""

    id = fields.BigIntField(primary_key=True)
    evaluator: fields.ForeignKeyRelation = fields.ForeignKeyField("models.User", related_name="evaluations", db_index=True)
    approver: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.User", related_name="approvals", null=True, db_index=True
    )
    score = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "evaluation"


class AgentSchedule(Model):
    """At most one schedule per user (the unique owner), hence OVERWRITE."""

    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation = fields.OneToOneField("models.User", related_name="schedule")
    pattern = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "agent_schedule"


@dataclass(frozen=True)
class Storage:
    """Where rows live: a table, its owner columns, and the column telling types apart.

    `unique_owner`: a user owns at most one row
    (a unique owner column), so a revert that would give someone a second one conflicts.
    """

    model: type[Model]
    owner_columns: tuple[str, ...]
    type_column: str | None = None
    unique_owner: bool = False

    @property
    def table(self) -> str:
        return table_name(self.model)


OWNED = Storage(OwnedRecord, ("owner_id",), type_column="data_type")
EVALUATIONS = Storage(Evaluation, ("evaluator_id", "approver_id"))
SCHEDULES = Storage(AgentSchedule, ("user_id",), unique_owner=True)


@dataclass(frozen=True)
class DataType:
    key: str
    name: str
    product: Product
    policy: Policy
    storage: Storage = OWNED


_QM, _WFM = Product.QM, Product.CLASSIC_WFM
_C, _O = Policy.COMBINE, Policy.OVERWRITE

DATA_TYPES: tuple[DataType, ...] = (
    DataType("LOGIN_STATE", "Login State", _QM, _C),
    DataType("RECORDING_API_COMMAND", "Recording API Command", _QM, _C),
    DataType("CCR", "CCRs", _QM, _C),
    DataType("EVALUATION", "Evaluations (as evaluator and as approver)", _QM, _C, EVALUATIONS),
    DataType("EVALUATION_COMMENT", "Evaluation Comments", _QM, _C),
    DataType("CONTACT_GOAL", "Contact Goal", _QM, _C),
    DataType("CONTACT_GOAL_PERSON", "Contact Goal Person", _QM, _C),
    DataType("CONTACT_GOAL_PROGRESS", "Contact Goal Progress", _QM, _C),
    DataType("STORAGE_FILE", "Storage File", _QM, _C),
    DataType("ARCHIVE_AUDIT", "Archive Audit", _QM, _C),
    DataType("WFO_AUDIT_EVENT", "WFO Audit Events", _QM, _C),
    DataType("USER_MESSAGING_REQUEST", "User Messaging Requests", _WFM, _C),
    DataType("USER_MESSAGING_REQUEST_COMMENT", "User Messaging Request Comments", _WFM, _C),
    DataType("USER_SERVER_REQUEST", "User Server Requests", _WFM, _C),
    DataType("ALERT", "Alerts (deprecated)", _WFM, _C),
    DataType("SAVED_VIEW", "Views", _WFM, _C),
    DataType("WORKFLOW_CONDITION", "Workflow Conditions", _WFM, _C),
    DataType("ACCUMULATED_VACATION_HOURS", "Accumulated Vacation Hours", _WFM, _O),
    DataType("SKILL_MAPPING", "Skill Mappings", _WFM, _O),
    DataType("AGENT_ASSIGNED_EXCEPTION", "Agent Assigned Exceptions", _WFM, _O),
    DataType("AGENT_SCHEDULE", "Agent Schedules", _WFM, _O, SCHEDULES),
    DataType("PROJECT", "Projects", _WFM, _O),
    DataType("AGENT_WORK_SHIFT", "Agent Work Shifts", _WFM, _O),
    DataType("AGENT_SERVICE_PRODUCTIVITY", "Agent/Service Productivity Data (interval to year)", _WFM, _O),
    DataType("AGENT_PRODUCTIVITY", "Agent Productivity Data", _WFM, _O),
    DataType("AGENT_OFFLINE_ACTIVITY_HOURS", "Agent Offline Activity Hours", _WFM, _O),
    DataType("AGENT_GROUP_DAY_ALLOCATION", "Agent Group Day Allocations", _WFM, _O),
    DataType("HISTORICAL_ACTIVITY", "Historical Activities by Agent", _WFM, _O),
    DataType("AGENT_WORK_HOURS", "Agent Work Hours", _WFM, _O),
    DataType("AGENT_REAL_TIME_STATE", "Agent Real Time States", _WFM, _O),
)

BY_KEY: dict[str, DataType] = {dt.key: dt for dt in DATA_TYPES}


def by_storage(types: Sequence[DataType]) -> dict[Storage, list[DataType]]:
    """`types` grouped by where they live, in registry order."""
    grouped: dict[Storage, list[DataType]] = {}
    for dt in types:
        grouped.setdefault(dt.storage, []).append(dt)
    return grouped
