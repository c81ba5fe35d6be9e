"""tortoise-orm's asyncpg client, with transactions that never outlive their connection.

Why: tortoise's own pooled transaction names its client in the task's context before
BEGIN and takes the name back only after returning the connection; when the database
goes away in between, every later transaction of that task nests in a released
connection ("connection has been released back to the pool"). Here the client is
named only once BEGIN succeeded, the name is taken back first, and a connection whose
BEGIN, COMMIT or ROLLBACK failed is closed.

A fence, as models/fences/tortoise.py is for tortoise's other internals, and checked
against the same version (its CHECKED, enforced at import): tortoise's
`AsyncpgDBClient._in_transaction`, `_pool_init_lock`, `_connection`, `_parent._pool`,
`TransactionWrapper._finalized`, `TransactionContextPooled`'s `ensure_connection`,
`connection_name` and `token`. Of asyncpg only the pool's public API is used (acquire,
release, terminate). It is a module of its own because tortoise imports the client by
module path.

tortoise finds this module by the `engine` of the connection's settings
(models/settings.py); its name holds "asyncpg", which tortoise's migrations read.
"""

from __future__ import annotations

import logging
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

import models.fences.tortoise  # noqa: F401 - checks, at import, the version these internals were read against

log = logging.getLogger(__name__)


class Client(AsyncpgDBClient):
    """tortoise's asyncpg client, whose transactions are `_Transaction`s."""

    def _in_transaction(self) -> TransactionContext:
        return _Transaction(TransactionWrapper(self), self._pool_init_lock)


class _Transaction(TransactionContextPooled):
    """A top-level transaction on a connection of the pool (nested ones are savepoints in it)."""

    __slots__ = ()

    async def __aenter__(self) -> TransactionWrapper:
        await self.ensure_connection()
        client = self.client
        client._connection = await client._parent._pool.acquire()
        try:
            await client.begin()
        except BaseException:
            await self._give_back(broken=True)
            raise
        self.token = get_connections().set(self.connection_name, client)
        return client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        get_connections().reset(self.token)
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:  # one that already failed cannot roll back
                    await self.client.rollback()
        except BaseException:
            await self._give_back(broken=True)
            raise
        await self._give_back(broken=False)

    async def _give_back(self, *, broken: bool) -> None:
        """Return the connection to the pool; close it first if it failed us.

        asyncpg closes a connection whose reset fails, then raises what the reset met:
        the transaction has ended by then, so that is logged, not raised."""
        pool, connection = self.client._parent._pool, self.client._connection
        if pool is None:  # the pool was closed meanwhile, with its connections
            return
        try:
            if broken and not connection.is_closed():
                connection.terminate()
            await pool.release(connection)
        except Exception as exc:  # noqa: BLE001 - the connection is closed either way
            log.debug("a connection could not be returned to the pool and was closed: %r", exc)


client_class = Client
