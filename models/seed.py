"""Demo and synthetic data (SPEC.md section 9): the demo tenant, and tenants of any size for benchmarks.

Deterministic: the same seed gives the same people and records, so the
README's examples and the tests can name users by ID.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from tortoise import connections
from tortoise.transactions import in_transaction

from models import clock
from models.tenancy import Team, TeamMember, Tenant, User, View, ViewTeam
from models.userdata import DATA_TYPES, OWNED, AgentSchedule, Evaluation, OwnedRecord

FIRST = "Ava Ben Carla Dev Emma Finn Grace Hugo Iris Jack Kira Liam Maya Noah Olga Paul Quinn Rosa Sam Tara".split()
LAST = "Adams Brown Clark Davis Evans Ford Green Hill Irwin Jones King Lopez Moore Nash Owen Price Reed Stone Turner Vance".split()
# SPEC.md section 9 / the vendor page's worked example: active, non-admin, inside East.
NAMED = {19: ("John", "Smith"), 20: ("James", "Anderson"), 21: ("Jenny", "Andrews"), 22: ("Sam", "Rodgers")}
GENERIC_TYPES = [dt.key for dt in DATA_TYPES if dt.storage is OWNED]


async def _tenant(slug: str, name: str) -> tuple[Tenant, dict[str, Team], dict[str, View]]:
    tenant = await Tenant.create(slug=slug, name=name)
    teams = {n: await Team.create(tenant=tenant, name=n) for n in ("East 1", "East 2", "West 1", "West 2")}
    views = {}
    for view_name, team_names in (("East", ("East 1", "East 2")), ("West", ("West 1", "West 2"))):
        views[view_name] = await View.create(tenant=tenant, name=view_name)
        await ViewTeam.bulk_create([ViewTeam(view=views[view_name], team=teams[t]) for t in team_names])
    return tenant, teams, views


async def _people(tenant: Tenant, teams: dict[str, Team], count: int, rng: random.Random, prefix: str = "") -> list[User]:
    """`count` users with User IDs 1..count: 1 is `admin`; 2 and 3 are tenant admins too; ~10% inactive."""
    users = []
    for uid in range(1, count + 1):
        first, last = NAMED.get(uid) or (rng.choice(FIRST), rng.choice(LAST))
        username = "admin" if uid == 1 else f"{prefix}{first}.{last}.{uid}".lower()
        users.append(
            User(
                tenant=tenant,
                user_id=uid,
                first_name=first,
                last_name=last,
                username=username,
                email=f"{username}@{tenant.slug}.example.com",
                active=uid in NAMED or uid <= 3 or uid % 10 != 7,
                tenant_admin=uid <= 3,
            )
        )
    await User.bulk_create(users, batch_size=1000)
    users = await User.filter(tenant=tenant).order_by("user_id")
    members = []
    for u in users:
        east = u.user_id in NAMED or u.user_id % 2 == 0
        side = "East" if east else "West"
        members.append(TeamMember(user=u, team=teams[f"{side} {1 + (u.user_id // 2) % 2}"]))
        if u.user_id % 15 == 0:  # a few people sit in a second team
            members.append(TeamMember(user=u, team=teams["West 2" if east else "East 2"]))
    await TeamMember.bulk_create(members, batch_size=1000)
    return users


async def _records(users: list[User], per_user: int, rng: random.Random) -> None:
    """About `per_user` records each, over every data type; one schedule for most users."""
    owned, evaluations, schedules = [], [], []
    for u in users:
        for i in range(per_user):
            kind = i % (len(GENERIC_TYPES) + 1)
            if kind == len(GENERIC_TYPES):
                approver = rng.choice(users)
                evaluations.append(Evaluation(evaluator_id=u.id, approver_id=approver.id, score=rng.randint(0, 100)))
            else:
                owned.append(OwnedRecord(data_type=GENERIC_TYPES[kind], owner_id=u.id, payload={"n": i}))
        if u.user_id % 5 != 0:
            schedules.append(AgentSchedule(user_id=u.id, pattern={"days": "Mon-Fri", "shift": rng.choice(["early", "late"])}))
    await OwnedRecord.bulk_create(owned, batch_size=2000)
    await Evaluation.bulk_create(evaluations, batch_size=2000)
    await AgentSchedule.bulk_create(schedules, batch_size=2000)


async def seed_demo() -> bool:
    """Tenants `demo` (220 users) and `acme` (40 users). False if already there."""
    if await Tenant.exists(slug="demo"):
        return False
    rng = random.Random(19)
    async with in_transaction():
        tenant, teams, views = await _tenant("demo", "Demo Contact Centre")
        users = await _people(tenant, teams, 220, rng)
        await User.filter(tenant=tenant, username="admin").update(first_name="Ada", last_name="Admin")
        east_lead = await User.create(
            tenant=tenant, user_id=1000, first_name="Eve", last_name="Lead", username="east.lead",
            email="east.lead@demo.example.com", can_transfer=True, view=views["East"],
        )
        await TeamMember.create(user=east_lead, team=teams["East 1"])
        await _records([u for u in users if u.user_id > 3], 40, rng)
        acme, acme_teams, _ = await _tenant("acme", "Acme Support")
        acme_users = await _people(acme, acme_teams, 40, rng, prefix="acme.")
        await _records(acme_users[3:], 4, rng)
    return True


# Records are spread evenly over every data type, so fewer than this many make none at all.
MIN_RECORDS_PER_USER = len(DATA_TYPES) // 2 + 1  # round() makes half of one none


async def seed_synthetic(slug: str, users: int, records_per_user: int, seed: int = 1) -> None:
    """A tenant for load tests: `admin` plus `users` non-admin users, ~10% inactive, bulk-loaded;
    `records_per_user` is 0 (people only) or at least MIN_RECORDS_PER_USER."""
    rng = random.Random(seed)
    tenant, teams, _ = await _tenant(slug, f"Synthetic {slug}")
    await User.create(tenant=tenant, user_id=1, first_name="Ada", last_name="Admin", username="admin", tenant_admin=True)
    people = [
        (tenant.id, uid, rng.choice(FIRST), rng.choice(LAST), f"user{uid}", f"user{uid}@{slug}.example.com", uid % 10 != 7)
        for uid in range(2, users + 2)
    ]
    db = connections.get("default")
    await _insert_many(
        db, "app_user", ("tenant_id", "user_id", "first_name", "last_name", "username", "email", "active"), people,
        defaults={"tenant_admin": False, "can_transfer": False},
    )
    pks = await User.filter(tenant=tenant, tenant_admin=False).order_by("user_id").values_list("id", "user_id")
    team_ids = [t.id for t in teams.values()]
    await _insert_many(db, "team_member", ("user_id", "team_id"), [(pk, team_ids[uid % 4]) for pk, uid in pks])
    per_type = round(records_per_user / len(DATA_TYPES))  # 0 for a tenant of people only
    owned = ((key, pk) for pk, _ in pks for key in GENERIC_TYPES for _ in range(per_type))
    await _insert_many(db, "owned_record", ("data_type", "owner_id"), owned, defaults={"payload": "{}"}, now=True)
    all_pks = [pk for pk, _ in pks]
    evaluations = ((pk, rng.choice(all_pks)) for pk in all_pks for _ in range(per_type))
    await _insert_many(db, "evaluation", ("evaluator_id", "approver_id"), evaluations, now=True)
    if per_type:
        schedules = ((pk,) for pk in all_pks)
        await _insert_many(db, "agent_schedule", ("user_id",), schedules, defaults={"pattern": "{}"}, now=True)


async def _insert_many(
    db, table: str, columns: tuple[str, ...], rows: Iterable[tuple], *, defaults: dict | None = None,
    now: bool = False, batch: int = 5000,
) -> None:
    """Multi-row INSERTs in batches: far faster than model instances for millions of rows."""
    extra = dict(defaults or {})
    if now:
        extra["created_at"] = clock.now()
    names = list(columns) + list(extra)
    pg = db.capabilities.dialect == "postgres"
    buffer: list = []

    async def flush() -> None:
        if not buffer:
            return
        width = len(names)
        if pg:
            groups = ",".join(
                "(" + ",".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(len(buffer))
            )
        else:
            groups = ",".join("(" + ",".join("?" * width) + ")" for _ in buffer)
        values = [v for row in buffer for v in (*row, *extra.values())]
        await db.execute_query(f"INSERT INTO {table} ({','.join(names)}) VALUES {groups}", values)
        buffer.clear()

    limit = min(batch, 30000 // len(names))  # stay under both drivers' parameter limits
    for row in rows:
        buffer.append(row)
        if len(buffer) >= limit:
            await flush()
    await flush()
