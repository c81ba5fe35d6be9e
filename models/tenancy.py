"""Tenants, teams, views, users and API tokens; and the operator's scope.

Scope is the one idea every query shares: an operator sees the users of the
teams of their assigned view, or the whole tenant when they are a tenant admin
without a view. Everything else about tenancy is plain data.
"""

from __future__ import annotations

import hashlib
import secrets

from tortoise import fields
from tortoise.expressions import Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet


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


class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField("models.User", related_name="tokens")
    # Only the SHA-256 of the token is stored: a database leak reveals no usable token.
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "api_token"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    async def issue(cls, user: User) -> str:
        """Create a token for `user` and return it; it is never readable again."""
        token = "udt_" + secrets.token_urlsafe(32)
        await cls.create(user=user, token_hash=cls.hash(token))
        return token

    @classmethod
    async def authenticate(cls, token: str) -> User | None:
        found = await cls.filter(token_hash=cls.hash(token)).select_related("user", "user__tenant").first()
        return found.user if found else None


def users_in_view(view_id: int) -> QuerySet[User]:
    teams = ViewTeam.filter(view_id=view_id).values("team_id")
    members = TeamMember.filter(team_id__in=Subquery(teams)).values("user_id")
    return User.filter(id__in=Subquery(members))


def scope(operator: User) -> QuerySet[User]:
    """The users `operator` may see and transfer."""
    if operator.view_id is not None:
        return users_in_view(operator.view_id).filter(tenant_id=operator.tenant_id)
    if operator.tenant_admin:
        return User.filter(tenant_id=operator.tenant_id)
    return User.filter(id=-1)  # no view and not an admin: nobody
