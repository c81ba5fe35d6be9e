"""Users, teams, views, the data-type catalogue, and the viewer: types and queries."""

from __future__ import annotations

import asyncio
import unicodedata
from typing import TYPE_CHECKING, Annotated

import strawberry
from graphql import GraphQLError
from tortoise.expressions import Q, RawSQL, Subquery
from tortoise.queryset import QuerySet

from graph.api.download_links import DownloadLink
from graph.auth import links
from graph.core.enum_descriptions import described_enum
from graph.core.errors import AUTHENTICATED, TRANSFERS, ClientError
from graph.core.loaders import now_or_later
from graph.core.relay import AFTER, FIRST, Node, connection_of, node_fields, pk_of, to_global_id
from graph.execution import plain_fields
from models import tenancy, userdata
from models.tenancy import TeamRow
from models.db import MAX_INT

if TYPE_CHECKING:
    from graph.core.context import Context

Product = described_enum(
    userdata.Product,
    "Product",
    "The product a data type belongs to.",
    {"QM": "Quality management.", "CLASSIC_WFM": "Classic workforce management."},
)
TransferPolicy = described_enum(
    userdata.Policy,
    "TransferPolicy",
    "What a transfer does with a data type.",
    {
        "COMBINE": "The source's records are reassigned to the target, which keeps its own too.",
        "OVERWRITE": "When the source has records, the target's own are deleted and the source's reassigned; "
        "when it has none, the target keeps its own.",
    },
)


@plain_fields.shared
@strawberry.type(description="One kind of user-owned data, and how a transfer treats it.")
class DataType:
    key: str = strawberry.field(description="Stable key, e.g. CCR or AGENT_SCHEDULE.")
    name: str = strawberry.field(description="Display name.")
    product: Product = strawberry.field(description="The product it belongs to.")
    policy: TransferPolicy = strawberry.field(description="COMBINE or OVERWRITE.")

    @classmethod
    def of(cls, dt: userdata.DataType) -> DataType:
        """One shared object per data type (a users page names each of them many times): the catalogue is code."""
        return _CATALOGUE[dt.key]


_CATALOGUE = {dt.key: DataType(key=dt.key, name=dt.name, product=dt.product, policy=dt.policy) for dt in userdata.DATA_TYPES}


@strawberry.type(description="A number of records of one data type.")
class DataTypeCount:
    data_type: DataType = strawberry.field(description="The data type counted.")
    count: int = strawberry.field(description="Records of that type.")


def data_type_counts(counts: dict[str, int]) -> list[DataTypeCount]:
    """Per data type in catalogue order; types with no records are left out."""
    return [
        DataTypeCount(data_type=DataType.of(dt), count=counts[dt.key])
        for dt in userdata.DATA_TYPES
        if counts.get(dt.key)
    ]


@strawberry.type(description="The organisation the caller belongs to; nothing crosses tenants.")
class Tenant:
    id: strawberry.ID = strawberry.field(description="Global ID.")
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="Short unique name.")

    @classmethod
    def of(cls, t: tenancy.Tenant) -> Tenant:
        return cls(id=strawberry.ID(to_global_id("Tenant", t.id)), name=t.name, slug=t.slug)


@strawberry.type(description="A team of users; views are made of teams.")
class Team:
    id: strawberry.ID = strawberry.field(description="Global ID.")
    name: str = strawberry.field(description="Display name.")

    @classmethod
    def of(cls, row: TeamRow) -> Team:
        pk, name = row
        return cls(id=strawberry.ID(to_global_id("Team", pk)), name=name)


@strawberry.type(description="A set of teams: an operator with a view sees only the users of its teams.")
class View(Node):
    pk: strawberry.Private[int]
    name: str = strawberry.field(description="Display name.")

    @classmethod
    def of(cls, v: tenancy.View) -> View:
        return cls(id=strawberry.ID(to_global_id("View", v.id)), pk=v.id, name=v.name)

    @strawberry.field(description="The teams whose users this view shows.")
    async def teams(self, info: strawberry.Info) -> list[Team]:
        return [Team.of(t) for t in await info.context.loaders.teams_of_view.load(self.pk)]


@strawberry.type(
    description="A person in the tenant. One outside your view is never named: where a field must "
    "return a user, it comes masked (outsideView true; only id and userId are real)."
)
class User(Node):
    pk: strawberry.Private[int]
    user_id: int = strawberry.field(description="The tenant-visible User ID used in CSV files.")
    first_name: str = strawberry.field(description="Given name; blank when outside your view.")
    last_name: str = strawberry.field(description="Family name; blank when outside your view.")
    display_name: str = strawberry.field(description='Full name; "User <userId>" when outside your view.')
    username: str = strawberry.field(description="Login name; blank when outside your view.")
    email: str | None = strawberry.field(description="Email address, if any; null when outside your view.")
    active: bool = strawberry.field(description="False for a deactivated user (who can still be a source).")
    tenant_admin: bool = strawberry.field(description="Tenant administrator: sees the whole tenant.")
    outside_view: bool = strawberry.field(
        description="True: the user is outside your view, shown by User ID only; names are blank, "
        "email null, flags false, teams and data empty."
    )

    # Plain functions, not coroutines: on a page of users the loaders hold the values already.

    @strawberry.field(description="The teams the user is in; empty when outside your view.")
    def teams(self, info: strawberry.Info) -> list[Team]:
        if self.outside_view:
            return []
        return now_or_later(info.context.loaders.teams_of_user.load(self.pk), _teams)

    @strawberry.field(description="Records owned now, per data type (types with 0 are left out).")
    def data(self, info: strawberry.Info) -> list[DataTypeCount]:
        if self.outside_view:
            return []
        return now_or_later(info.context.loaders.owned.load(self.pk), data_type_counts)


def _teams(rows: list[TeamRow]) -> list[Team]:
    return [Team.of(row) for row in rows]


# The scope rule of every field that returns a User lives in the four functions
# below, and nowhere else: a resolver hands them primary keys or rows and gets
# back what the operator may see. tests/test_scope.py fails for a field of type
# User that it does not know, so a new one cannot skip them unnoticed.


def _shown(u: tenancy.User) -> User:
    return User(
        id=strawberry.ID(to_global_id("User", u.id)),
        pk=u.id,
        user_id=u.user_id,
        first_name=u.first_name,
        last_name=u.last_name,
        display_name=u.display_name,
        username=u.username,
        email=u.email,
        active=u.active,
        tenant_admin=u.tenant_admin,
        outside_view=False,
    )


def _masked(u: tenancy.User) -> User:
    return User(
        id=strawberry.ID(to_global_id("User", u.id)),
        pk=u.id,
        user_id=u.user_id,
        first_name="",
        last_name="",
        display_name=f"User {u.user_id}",
        username="",
        email=None,
        active=False,
        tenant_admin=False,
        outside_view=True,
    )


async def show_user(context: Context, pk: int | None) -> User | None:
    """The user `pk` as the operator may see them: None when unknown, of another tenant, or outside scope."""
    if pk is None:
        return None
    user = await context.loaders.user.load(pk)
    if user is None or not await context.loaders.in_scope.load(pk):
        return None
    return _shown(user)


async def show_user_or_mask(context: Context, pk: int) -> User:
    """For non-null fields: the user, or masked when outside the operator's scope."""
    user = await context.loaders.user.load(pk)
    if user is None:  # another tenant's user behaves like one that does not exist
        raise GraphQLError("No such user.", extensions={"code": "NOT_FOUND"})
    return _shown(user) if await context.loaders.in_scope.load(pk) else _masked(user)


async def show_users(context: Context, rows: list[tenancy.User]) -> list[User]:
    """Rows already read (user, plan, viewer), less any the operator may not see."""
    for row in rows:
        context.loaders.user.prime(row.id, row)
    visible = await context.loaders.in_scope.load_many([row.id for row in rows])
    return [_shown(row) for row, ok in zip(rows, visible) if ok]


def show_scope_rows(context: Context, rows: list[tenancy.User]) -> list[User]:
    """Rows read through `tenancy.scope(operator)` itself (the users connection): in scope by how
    they were read, so shown without asking the database again; noted as such for other fields."""
    for row in rows:
        context.loaders.user.prime(row.id, row)
        context.loaders.in_scope.prime(row.id, True)
    return [_shown(row) for row in rows]


async def load_for_page(info: strawberry.Info, users: list[User]) -> None:
    """Teams and data of a whole page at once, when the query asks for them on its nodes: then
    each user's field finds its value in the loader and completes without waiting."""
    wanted, loaders, pks = node_fields(info), info.context.loaders, [u.pk for u in users]
    batches = [loader.load_many(pks) for name, loader in (("teams", loaders.teams_of_user), ("data", loaders.owned)) if name in wanted]
    await asyncio.gather(*batches)


@strawberry.input(description="Which users to list; every given condition must hold.")
class UserFilter:
    active: bool | None = strawberry.field(
        default=True, description="true: active only; false: inactive only; null: both."
    )
    view_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only users inside this view (itself inside the caller's scope)."
    )
    search: str | None = strawberry.field(
        default=None,
        description="Case-insensitive, on names, username, email, or an exact User ID; "
        "every word must match.",
    )


@strawberry.type(description="The caller: who they are, where, and what they may do.")
class Viewer:
    user: User = strawberry.field(description="The caller as a user.")
    tenant: Tenant = strawberry.field(description="The caller's tenant.")
    view: View | None = strawberry.field(description="The caller's view; null: the whole tenant (admin) or none.")
    can_transfer: bool = strawberry.field(description="May start, watch and cancel transfers.")

    @strawberry.field(
        permission_classes=TRANSFERS,
        description="A link to your people file (the file GET /exports/people.csv writes), "
        "for a plain link in a browser: no Authorization header needed.",
    )
    async def people_file_link(self, info: strawberry.Info) -> DownloadLink:
        operator = await info.context.operator()
        return DownloadLink.of(links.Download(operator.id, links.PEOPLE))


UserConnection = connection_of(User, "user", "users")
USERS = "users"  # what the users connection's cursors are bound to (graph/core/relay.py)
MAX_SEARCH_CHARS = 200
MAX_SEARCH_WORDS = 10


def _search_words(text: str) -> list[str]:
    """The words of a search, or INVALID_SEARCH: each word is one OR of LIKEs, so their number is capped."""
    if len(text) > MAX_SEARCH_CHARS:
        raise ClientError("INVALID_SEARCH", f"A search is at most {MAX_SEARCH_CHARS} characters.")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):  # NUL matched everyone on SQLite
        raise ClientError("INVALID_SEARCH", "A search cannot hold control characters.")
    words = text.split()
    if len(words) > MAX_SEARCH_WORDS:
        raise ClientError("INVALID_SEARCH", f"A search is at most {MAX_SEARCH_WORDS} words.")
    return words


# What a search looks in: names, username and email in one text, so that each word is one LIKE
# that PostgreSQL answers from the trigram index over this same expression (migration 0008).
# A word has no whitespace, so it matches this text exactly when it matches one of its parts.
SEARCHED = "\"first_name\" || ' ' || \"last_name\" || ' ' || \"username\" || ' ' || COALESCE(\"email\", '')"


def _search(query: QuerySet[tenancy.User], text: str) -> QuerySet[tenancy.User]:
    """Every word must match a name, the username, the email, or be the exact User ID."""
    clauses = []
    for term in _search_words(text):
        match = Q(searched__icontains=term)
        if term.isascii() and term.isdigit() and int(term) <= MAX_INT:
            match |= Q(user_id=int(term))
        clauses.append(match)
    return query.annotate(searched=RawSQL(SEARCHED)).filter(*clauses) if clauses else query


async def visible_views(operator: tenancy.User) -> list[tenancy.View]:
    if tenancy.sees_whole_tenant(operator):
        return await tenancy.View.filter(tenant_id=operator.tenant_id).order_by("name")
    if operator.view_id is not None:
        return await tenancy.View.filter(id=operator.view_id)
    return []


async def find_user(operator: tenancy.User, user_id: int) -> tenancy.User | None:
    return await tenancy.scope(operator).filter(user_id=user_id).first()


@strawberry.type
class UserQueries:
    @strawberry.field(permission_classes=AUTHENTICATED, description="The caller (any valid token).")
    async def viewer(self, info: strawberry.Info) -> Viewer:
        op = await info.context.operator()
        await op.fetch_related("tenant", "view")
        (me,) = await show_users(info.context, [op])  # everyone sees themselves
        return Viewer(
            user=me,
            tenant=Tenant.of(op.tenant),
            view=View.of(op.view) if op.view else None,
            can_transfer=op.may_transfer,
        )

    @strawberry.field(permission_classes=TRANSFERS, description="Users in your scope, ordered by User ID.")
    async def users(
        self,
        info: strawberry.Info,
        filter: Annotated[  # noqa: A002 - the contract's name
            UserFilter | None, strawberry.argument(description="Which users; by default the active ones.")
        ] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> UserConnection:
        op = await info.context.operator()
        where = filter or UserFilter()
        query = tenancy.scope(op)
        if where.active is not None:
            query = query.filter(active=where.active)
        if where.view_id is not None:
            view_pk = pk_of(where.view_id, "View")
            allowed = {v.id for v in await visible_views(op)}
            if view_pk not in allowed:
                query = query.filter(id=-1)  # unknown or foreign view: nobody
            else:
                query = query.filter(id__in=Subquery(tenancy.users_in_view(view_pk).values("id")))
        if where.search is not None:
            query = _search(query, where.search)

        async def nodes(rows: list[tenancy.User]) -> list[User]:
            users = show_scope_rows(info.context, rows)  # `query` is tenancy.scope(op), narrowed
            await load_for_page(info, users)
            return users

        return await UserConnection.page(query, USERS, "user_id", first, after, nodes)

    @strawberry.field(permission_classes=TRANSFERS, description="One user in your scope; null when none.")
    async def user(
        self, info: strawberry.Info, user_id: Annotated[int, strawberry.argument(description="The User ID.")]
    ) -> User | None:
        found = await find_user(await info.context.operator(), user_id)
        return next(iter(await show_users(info.context, [found] if found else [])), None)

    @strawberry.field(permission_classes=TRANSFERS, description="The views you may filter users by.")
    async def views(self, info: strawberry.Info) -> list[View]:
        return [View.of(v) for v in await visible_views(await info.context.operator())]

    @strawberry.field(permission_classes=AUTHENTICATED, description="Every data type a transfer moves, in catalogue order.")
    def data_types(self) -> list[DataType]:
        return [DataType.of(dt) for dt in userdata.DATA_TYPES]
