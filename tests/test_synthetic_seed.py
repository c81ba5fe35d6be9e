"""`udt seed --synthetic`: a load-test tenant, bulk-loaded."""

from __future__ import annotations

from models import seed
from models.counts import owned_counts
from models.tenancy import Tenant, User
from models.userdata import DATA_TYPES


async def test_a_synthetic_tenant_has_an_admin_and_users_owning_every_data_type(database: str) -> None:
    await seed.seed_synthetic("synthetic-test", users=100, records_per_user=60)
    tenant = await Tenant.get(slug="synthetic-test")
    admin = await User.get(tenant=tenant, username="admin")
    assert admin.tenant_admin
    people = await User.filter(tenant=tenant, tenant_admin=False)
    assert len(people) == 100
    assert sum(not u.active for u in people) == 10
    counts = await owned_counts([u.id for u in people])
    assert all(set(c) == {dt.key for dt in DATA_TYPES} for c in counts.values())
    per_user = [sum(c.values()) for c in counts.values()]
    assert min(per_user) >= 30 and max(per_user) <= 90  # about 60 each


async def test_the_demo_seed_has_the_worked_examples_users(database: str) -> None:
    await seed.seed_demo()
    demo = await Tenant.get(slug="demo")
    named = {u.user_id: (u.first_name, u.last_name, u.active, u.tenant_admin) for u in await User.filter(tenant=demo, user_id__in=[19, 20, 21, 22])}
    assert named == {
        19: ("John", "Smith", True, False),
        20: ("James", "Anderson", True, False),
        21: ("Jenny", "Andrews", True, False),
        22: ("Sam", "Rodgers", True, False),
    }
    users = await User.filter(tenant=demo)
    assert len(users) >= 200 and sum(not u.active for u in users) >= 20 and sum(u.tenant_admin for u in users) >= 3
    east_lead = await User.get(tenant=demo, username="east.lead").prefetch_related("view")
    assert east_lead.can_transfer and east_lead.view.name == "East"
    from models.tenancy import users_in_view

    east = set(await users_in_view(east_lead.view_id).values_list("user_id", flat=True))
    assert {19, 20, 21, 22} <= east
    counts = await owned_counts([u.id for u in users])
    assert {key for c in counts.values() for key in c} == {dt.key for dt in DATA_TYPES}
    assert await Tenant.exists(slug="acme")
