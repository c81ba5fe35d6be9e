"""Webhook secrets: made, kept encrypted, and used to sign (the Standard Webhooks scheme).

A secret is `whsec_` + base64 of 32 random bytes, shown to the operator once. The
database keeps it encrypted (Fernet) under a key derived from UDT_SECRET_KEY,
so a dump of the database alone cannot sign. UDT_SECRET_KEY lists keys newest
first: the first encrypts, every one listed decrypts, so it rotates as the
download links' keys do. Every process that saves or signs (the API, the
workers) needs the same list.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from standardwebhooks import Webhook

from models import settings

PREFIX = "whsec_"
# Keeps this key apart from the same secret's other uses (download links).
_PURPOSE = b"udt webhook secrets"


class SecretKeyMissing(RuntimeError):
    """No UDT_SECRET_KEY: webhook secrets can be neither stored nor read."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _fernet() -> MultiFernet:
    if not settings.SECRET_KEYS:
        raise SecretKeyMissing("UDT_SECRET_KEY is needed to store and use webhook secrets")
    return MultiFernet([Fernet(_derived(key)) for key in settings.SECRET_KEYS])


def _derived(key: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(key.encode())
    return base64.urlsafe_b64encode(derived)


def seal(secret: str) -> str:
    """The secret as the database keeps it."""
    return _fernet().encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str:
    """The secret back; cryptography's InvalidToken when no key listed in UDT_SECRET_KEY sealed it."""
    return _fernet().decrypt(sealed.encode()).decode()


def signature(secrets_now: list[str], msg_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,<base64>` per secret, space-separated
    (the new secret first during a rotation)."""
    return " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets_now)

