"""Eligibility: who may take part in a transfer (SPEC.md section 4).

One function checks a whole batch of pairs with a constant number of queries.
The plan, the single start, the CSV upload, the bulk start and each pair just
before it is applied all call it, so they can never disagree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from tortoise.backends.base.client import BaseDBAsyncClient

from models import engine
from models.db import MAX_INT
from models.problems import Problem, Role
from models.tenancy import User, scope, sees_whole_tenant
from models.transfers import TransferLock
from models.userdata import BY_KEY, DATA_TYPES, DataType

@dataclass
class PairCheck:
    source_ref: object
    target_ref: object
    row_number: int | None = None
    source: User | None = None
    target: User | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_user_id(ref: object) -> int | None:
    """A positive integer User ID from an int or a CSV cell, else None.

    A number too large for any User ID is still a valid ID: it is simply not found.
    """
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return ref if ref > 0 else None
    text = str(ref).strip() if ref is not None else ""
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text)
    return None


def describe(user: User) -> str:
    return f"{user.display_name} ({user.user_id})"


def nothing_to_transfer(source: User) -> Problem:
    return Problem(
        "NOTHING_TO_TRANSFER",
        f"Source user {describe(source)} owns no records of the data types being transferred: "
        "there is nothing to transfer.",
        "source",
    )


def data_types_problem(keys: Sequence[str] | None) -> Problem | None:
    """INVALID_DATA_TYPE for a choice of data types that names an unknown key, names one
    twice, or names none (an empty choice would move nothing: leave it out to move every
    type); None when `keys` is a valid choice or absent."""
    if keys is None:
        return None
    if not keys:
        return Problem(
            "INVALID_DATA_TYPE", "Choose at least one data type, or leave dataTypes out to transfer every type.", "types"
        )
    unknown = list(dict.fromkeys(k for k in keys if k not in BY_KEY))
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    if not (unknown or repeated):
        return None
    said = []
    if unknown:
        said.append(f"unknown data type(s) {', '.join(map(repr, unknown))}")
    if repeated:
        said.append(f"data type(s) named more than once {', '.join(map(repr, repeated))}")
    return Problem("INVALID_DATA_TYPE", f"Invalid dataTypes: {'; '.join(said)}. Use the keys of DataType.", "types")


def stored_choice(keys: Sequence[str] | None) -> list[str] | None:
    """A valid choice as a transfer records it: its keys in registry order, or None for every type."""
    return None if keys is None else [dt.key for dt in engine.chosen(keys)]


def _lines(rows: list[int | None]) -> str:
    numbers = [str(r) for r in rows if r is not None]
    return f" (lines {', '.join(numbers)})" if numbers else ""


async def check_pairs(
    operator: User,
    pairs: Sequence[tuple[object, object, int | None]],
    *,
    ignore_locks_of: int | None = None,
    using_db: BaseDBAsyncClient | None = None,
    sources_checked_by_engine: bool = False,
    types: Sequence[DataType] = DATA_TYPES,
) -> list[PairCheck]:
    """Check (source, target, row_number) pairs; returns one PairCheck per pair, in order.

    A constant number of queries whatever the number of pairs: the users, the scope,
    the locks, and which sources own any record (one per owner column).
    `ignore_locks_of` is the transfer the pairs belong to, when re-checking its own items.
    `sources_checked_by_engine` skips NOTHING_TO_TRANSFER where the caller applies the
    pair in the same transaction and refuses it when it moved nothing (lifecycle).
    `types` are the data types the transfer moves: a source that owns none of them has
    nothing to transfer, whatever else it owns.
    """
    checks = [PairCheck(s, t, row) for s, t, row in pairs]
    ids = {
        uid
        for c in checks
        for uid in (parse_user_id(c.source_ref), parse_user_id(c.target_ref))
        if uid is not None
    }
    users: dict[int, User] = {}
    visible: set[int] = set()
    busy: set[str] = set()
    owning: set[int] = set()
    ids = {uid for uid in ids if uid <= MAX_INT}
    if ids:
        found = await User.filter(tenant_id=operator.tenant_id, user_id__in=ids).using_db(using_db)
        users = {u.user_id: u for u in found}
        pks = [u.id for u in found]
        if pks:
            if sees_whole_tenant(operator):
                visible = set(pks)  # the whole tenant, where `found` already is: no query
            else:
                visible = set(
                    await scope(operator).filter(id__in=pks).using_db(using_db).values_list("id", flat=True)
                )
            locks = TransferLock.filter(
                tenant_id=operator.tenant_id, key__in=[TransferLock.user_key(pk) for pk in pks]
            ).using_db(using_db)
            if ignore_locks_of is not None:
                locks = locks.exclude(transfer_id=ignore_locks_of)
            busy = set(await locks.values_list("key", flat=True))
            if not sources_checked_by_engine:
                sources = {parse_user_id(c.source_ref) for c in checks}
                owning = await engine.owners([u.id for u in found if u.user_id in sources], using_db, types)

    for check in checks:
        for role, ref in (("source", check.source_ref), ("target", check.target_ref)):
            label = role.capitalize()
            uid = parse_user_id(ref)
            if uid is None:
                shown = "empty" if ref is None or str(ref).strip() == "" else repr(str(ref))
                check.problems.append(
                    Problem("INVALID_USER_ID", f"{label} user ID ({shown}) is not a positive integer.", role)
                )
                continue
            user = users.get(uid)
            if user is None:
                check.problems.append(Problem("USER_NOT_FOUND", f"{label} user {uid} does not exist.", role))
                continue
            if user.id not in visible:
                check.problems.append(
                    # No name: what is outside the view stays unseen.
                    Problem("USER_OUTSIDE_VIEW", f"{label} user {uid} is outside your view.", role)
                )
                continue
            setattr(check, role, user)
            if user.tenant_admin:
                check.problems.append(
                    Problem(
                        "TENANT_ADMIN",
                        f"{label} user {describe(user)} is a tenant admin; tenant admins cannot be transferred.",
                        role,
                    )
                )
            if TransferLock.user_key(user.id) in busy:
                check.problems.append(
                    Problem("USER_BUSY", f"{label} user {describe(user)} is in a transfer that is queued or running.", role)
                )
            if role == "source" and not sources_checked_by_engine and user.id not in owning:
                check.problems.append(nothing_to_transfer(user))
        src, tgt = parse_user_id(check.source_ref), parse_user_id(check.target_ref)
        if src is not None and src == tgt:
            check.problems.append(Problem("SAME_USER", f"Source and target are the same user ({src})."))

    _check_roles(checks, {uid: describe(users[uid]) for uid in ids if users.get(uid) and users[uid].id in visible})
    return checks


async def check_single(
    operator: User, source_ref: object, target_ref: object, data_types: Sequence[str] | None
) -> PairCheck:
    """One pair and its choice of data types, with every problem at once: an invalid
    choice first, then the pair's own (checked over every type, since no choice holds)."""
    invalid = data_types_problem(data_types)
    types = engine.chosen(None if invalid else data_types)
    (check,) = await check_pairs(operator, [(source_ref, target_ref, None)], types=types)
    if invalid:
        check.problems.insert(0, invalid)
    return check


def _check_roles(checks: list[PairCheck], names: dict[int, str]) -> None:
    """The rules that look across pairs: one source once, one target once, no chains."""
    as_source: dict[int, list[PairCheck]] = defaultdict(list)
    as_target: dict[int, list[PairCheck]] = defaultdict(list)
    for check in checks:
        src, tgt = parse_user_id(check.source_ref), parse_user_id(check.target_ref)
        if src is not None:
            as_source[src].append(check)
        if tgt is not None:
            as_target[tgt].append(check)
    for groups, code, role in ((as_source, "SOURCE_USED_TWICE", "source"), (as_target, "TARGET_USED_TWICE", "target")):
        for uid, group in groups.items():
            if len(group) > 1:
                rows = _lines([c.row_number for c in group])
                who = names.get(uid, str(uid))
                message = f"{role.capitalize()} user {who} is the {role} of more than one pair{rows}."
                for check in group:
                    check.problems.append(Problem(code, message, role))  # type: ignore[arg-type]
    for uid in as_source.keys() & as_target.keys():
        involved = [c for c in as_source[uid] + as_target[uid] if parse_user_id(c.source_ref) != parse_user_id(c.target_ref)]
        if len({id(c) for c in involved}) < 2:
            continue  # only a SAME_USER pair: reported as that
        rows = _lines(sorted({c.row_number for c in involved if c.row_number is not None}))
        for check in {id(c): c for c in involved}.values():
            role: Role = "source" if parse_user_id(check.source_ref) == uid else "target"
            check.problems.append(
                Problem(
                    "USER_IN_TWO_ROLES",
                    f"User {names.get(uid, uid)} is a source in one pair and a target in another{rows}; "
                    "chains are not allowed.",
                    role,
                )
            )
