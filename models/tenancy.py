"""Tenants, teams, views, users and API tokens; and the operator's scope.

Scope is the one idea every query shares: an operator sees the users of the
teams of their assigned view, or the whole tenant when they are a tenant admin
without a view (`sees_whole_tenant`). Everything else about tenancy is plain data.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta

from tortoise import connections, fields
from tortoise.expressions import Q, Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.clock import now
from models.fences.tortoise import from_row, model_field
from models.sql import Statement, columns, prefixed


class Tenant(Model):
    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)

    class Meta:
        table = "tenant"


class Team(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField("models.Tenant", related_name="teams")
    name = fields.CharField(max_length=200)

    class Meta:
        table = "team"
        unique_together = (("tenant", "name"),)


class View(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField("models.Tenant", related_name="views")
    name = fields.CharField(max_length=200)

    class Meta:
        table = "view"
        unique_together = (("tenant", "name"),)


class ViewTeam(Model):
    id = fields.IntField(primary_key=True)
    view: fields.ForeignKeyRelation[View] = fields.ForeignKeyField("models.View", related_name="view_teams")
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField("models.Team", related_name="team_views")

    class Meta:
        table = "view_team"
        unique_together = (("view", "team"),)


class User(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField("models.Tenant", related_name="users")
    # The tenant-visible "User ID" printed in CSV files; unique per tenant only.
    user_id = fields.IntField()
    first_name = fields.CharField(max_length=100)
    last_name = fields.CharField(max_length=100)
    username = fields.CharField(max_length=150)
    email = fields.CharField(max_length=254, null=True)
    active = fields.BooleanField(default=True)
    tenant_admin = fields.BooleanField(default=False)
    can_transfer = fields.BooleanField(default=False)
    view: fields.ForeignKeyNullableRelation[View] = fields.ForeignKeyField(
        "models.View", related_name="operators", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "app_user"
        unique_together = (("tenant", "user_id"), ("tenant", "username"))

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def may_transfer(self) -> bool:
        return self.tenant_admin or self.can_transfer


class TeamMember(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField("models.User", related_name="memberships")
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField("models.Team", related_name="members", db_index=True)

    class Meta:
        table = "team_member"
        unique_together = (("user", "team"),)


# What `udt token create` issues unless told otherwise.
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
# `last_used_at` is a hint, not an audit trail: at most one write per token per minute.
LAST_USED_PRECISION = timedelta(minutes=1)
# Tokens are "udt_" + URL-safe base64. Anything else (odd characters, huge strings)
# is refused before it is hashed or reaches the database.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,200}")



class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField("models.User", related_name="tokens")
    # Only the SHA-256 of the token is stored: a database leak reveals no usable token.
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Null: never expires (tokens made before expiry existed, or `--expires-in never`).
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_token"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @staticmethod
    def well_formed(token: object) -> bool:
        return isinstance(token, str) and _TOKEN_SHAPE.fullmatch(token) is not None

    @classmethod
    async def issue(cls, user: User, lifetime: timedelta | None = DEFAULT_TOKEN_LIFETIME) -> str:
        """Create a token for `user` and return it; it is never readable again.

        `lifetime` None: the token never expires.
        """
        token = "udt_" + secrets.token_urlsafe(32)
        expires_at = now() + lifetime if lifetime is not None else None
        await cls.create(user=user, token_hash=cls.hash(token), expires_at=expires_at)
        return token

    @classmethod
    async def authenticate(cls, token: str) -> User | None:
        """The active user of a live token (neither revoked nor expired), with their tenant; else None.

        Constant-time in effect: the lookup is by the token's SHA-256, an equality
        search on a unique index. An attacker controls the token, not its hash, so
        how long the lookup takes tells them nothing about any stored hash.
        One written-out statement: every request and every subscription's re-check asks,
        and the ORM's query with two joins cost more to build than to run.
        """
        if not cls.well_formed(token):
            return None
        q = Statement(connections.get("default"))
        at = model_field(cls, "expires_at").to_db_value(now(), None)
        rows = await q.dicts(
            f"SELECT {columns(cls, 'k')}, {columns(User, 'u')}, {columns(Tenant, 't')} FROM api_token k "
            "JOIN app_user u ON u.id = k.user_id JOIN tenant t ON t.id = u.tenant_id "
            f"WHERE k.token_hash = {q.p(cls.hash(token))} AND k.revoked_at IS NULL AND u.active "
            f"AND (k.expires_at IS NULL OR k.expires_at > {q.p(at)})"
        )
        if not rows:
            return None
        found = from_row(cls, prefixed(rows[0], "k"))
        user = from_row(User, prefixed(rows[0], "u"))
        user.tenant = from_row(Tenant, prefixed(rows[0], "t"))
        await found._touch()
        return user

    async def _touch(self) -> None:
        """Note the use, at most once a minute: the condition makes concurrent requests write once."""
        at = now()
        stale = at - LAST_USED_PRECISION
        if self.last_used_at is None or self.last_used_at < stale:
            await ApiToken.filter(Q(last_used_at=None) | Q(last_used_at__lt=stale), id=self.id).update(last_used_at=at)

    @classmethod
    async def revoke(cls, token_id: int) -> bool:
        """Revoke a token; False when there is no such token or it was revoked already."""
        return bool(await cls.filter(id=token_id, revoked_at=None).update(revoked_at=now()))


def users_in_view(view_id: int) -> QuerySet[User]:
    teams = ViewTeam.filter(view_id=view_id).values("team_id")
    members = TeamMember.filter(team_id__in=Subquery(teams)).values("user_id")
    return User.filter(id__in=Subquery(members))


def sees_whole_tenant(operator: User) -> bool:
    """The scope rule: a tenant admin without a view sees the whole tenant; an operator with a
    view sees the members of its teams (an admin too); anyone else, nobody."""
    return operator.view_id is None and operator.tenant_admin


def scope(operator: User) -> QuerySet[User]:
    """The users `operator` may see and transfer."""
    if sees_whole_tenant(operator):
        return User.filter(tenant_id=operator.tenant_id)
    if operator.view_id is not None:
        return users_in_view(operator.view_id).filter(tenant_id=operator.tenant_id)
    return User.filter(id=-1)  # no view and not an admin: nobody


def scope_condition(operator: User, q: Statement, alias: str) -> str:
    """`scope(operator)` as SQL, a condition on the `app_user` row `alias`, for statements
    written out (the people file). The same rule: tests/test_scope.py holds them equal."""
    if sees_whole_tenant(operator):
        return f"{alias}.tenant_id = {q.p(operator.tenant_id)}"
    if operator.view_id is not None:  # parameters in the order they are written (SQLite's `?`)
        return (
            f"{alias}.tenant_id = {q.p(operator.tenant_id)} AND {alias}.id IN (SELECT m.user_id FROM team_member m "
            f"JOIN view_team v ON v.team_id = m.team_id WHERE v.view_id = {q.p(operator.view_id)})"
        )
    return "1 = 0"  # nobody


async def in_scope(operator: User, pks: Iterable[int]) -> set[int]:
    """Which of the users `pks` the operator may see: their scope, and themselves.

    Every path that shows a user (GraphQL fields, CSV files) asks this, so that
    an operator limited to a view learns nothing about a user outside it.
    """
    wanted = set(pks)
    if not wanted:
        return set()
    if sees_whole_tenant(operator):
        query = User.filter(tenant_id=operator.tenant_id, id__in=wanted)
    else:
        query = scope(operator).filter(id__in=wanted)
    seen = set(await query.values_list("id", flat=True))
    return seen | ({operator.id} & wanted)


TeamRow = tuple[int, str]  # (pk, name): all a team shows
_TEAM_LINKS = {"user": ("team_member", "user_id"), "view": ("view_team", "view_id")}


async def teams_of(kind: str, pks: Sequence[int]) -> dict[int, list[TeamRow]]:
    """The teams of each user (kind "user") or view ("view") of `pks`, in name order.

    One written-out statement by the link table's index: the ORM's join cost more than the
    database did (the users page asks once per page).
    """
    if not pks:
        return {}
    link, column = _TEAM_LINKS[kind]
    statement = Statement(connections.get("default"))
    rows = await statement.rows(
        f"SELECT l.{column}, t.id, t.name FROM {link} l JOIN team t ON t.id = l.team_id"
        f" WHERE {statement.isin('l.' + column, pks)} ORDER BY t.name"
    )
    teams: dict[int, list[TeamRow]] = defaultdict(list)
    for pk, team_pk, name in rows:
        teams[pk].append((team_pk, name))
    return teams
