"""Review-UI accounts: argon2id password hashes, roles, lockout after repeated failures, and the
server-side browser sessions (the cookie carries a random token; the store keeps its hash)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select

from serving.review.throttle import LoginGuard
from serving.store import ROLES, Store, User, WebSession, now

HASHER = PasswordHasher()  # argon2id, the library's current defaults (RFC 9106 low-memory)
MIN_PASSWORD = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
RANK = {"officer": 1, "supervisor": 2, "admin": 3}
_DUMMY = HASHER.hash("claimradar-timing-equaliser")


@dataclass(frozen=True)
class Account:
    """The signed-in user as the UI sees it (never the password hash)."""

    id: int
    username: str
    role: str

    def at_least(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")


def create_user(store: Store, name: str, role: str, password: str) -> int:
    """A new review-UI account; returns its id. Names are lower-case letters, digits, . _ -."""
    name = name.strip().lower()
    if not USERNAME.match(name):
        raise ValueError(
            "user names are 3-64 characters: lower-case letters, digits, '.', '_', '-'"
        )
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    _check_password(password)
    with store.session.begin() as s:
        if s.scalar(select(User.id).where(User.username == name)) is not None:
            raise ValueError(f"a user named {name!r} exists")
        user = User(username=name, password_hash=HASHER.hash(password), role=role, active=True)
        s.add(user)
        s.flush()
        store.audit(s, "cli", "create", "user", name, after={"role": role})
        return user.id


def set_password(store: Store, name: str, password: str, actor: str = "cli") -> None:
    _check_password(password)
    with store.session.begin() as s:
        user = s.scalar(select(User).where(User.username == name))
        if user is None:
            raise ValueError(f"no user named {name!r}")
        user.password_hash = HASHER.hash(password)
        user.failed_logins, user.locked_until = 0, None
        s.execute(delete(WebSession).where(WebSession.user_id == user.id))
        store.audit(s, actor, "set_password", "user", name)


def unlock_user(store: Store, name: str, actor: str = "cli") -> bool:
    with store.session.begin() as s:
        user = s.scalar(select(User).where(User.username == name))
        if user is None:
            return False
        before = {"failed_logins": user.failed_logins, "locked_until": user.locked_until}
        user.failed_logins, user.locked_until = 0, None
        store.audit(s, actor, "unlock", "user", name, before=before)
        return True


def set_active(store: Store, name: str, active: bool, actor: str = "cli") -> bool:
    with store.session.begin() as s:
        user = s.scalar(select(User).where(User.username == name))
        if user is None:
            return False
        before = {"active": user.active}
        user.active = active
        if not active:
            s.execute(delete(WebSession).where(WebSession.user_id == user.id))
        store.audit(s, actor, "activate" if active else "deactivate", "user", name, before=before)
        return True


def list_users(store: Store) -> list[dict]:
    with store.session() as s:
        return [
            {
                "id": u.id,
                "username": u.username,
                "role": u.role,
                "active": u.active,
                "failed_logins": u.failed_logins,
                "locked_until": u.locked_until,
                "created_at": u.created_at,
            }
            for u in s.scalars(select(User).order_by(User.username))
        ]


def authenticate(
    store: Store,
    name: str,
    password: str,
    *,
    max_failures: int = 5,
    lock_minutes: int = 15,
    client: str = "",
    guard: LoginGuard | None = None,
    lock_clients: int = 2,
) -> tuple[Account | None, str]:
    """(account, "ok"), or (None, "bad" | "locked" | "wait"). Unknown names, wrong passwords and
    inactive accounts answer alike, and every checked attempt verifies one argon2 hash (a dummy
    one for unknown names), so neither the answer nor its time says whether a name exists.

    Without a `guard`, `max_failures` wrong passwords in a row lock the account (the CLI, tests).
    With one (the web sign-in, `client` its address; serving.review.throttle), a client that keeps
    failing waits ("wait", nothing checked); `max_failures` failures of one (name, client) pair
    lock that pair only ("locked" for that name from that client, known or not); the account
    itself locks for everybody only after `max_failures × lock_clients` failures from at least
    `lock_clients` distinct clients, so no single client can lock an officer out."""
    name = name.strip().lower()[:64]
    if guard is not None and guard.client_wait(client) > 0:
        return None, "wait"
    pair_locked = guard is not None and guard.pair_locked(name, client)
    with store.session.begin() as s:
        user = s.scalar(select(User).where(User.username == name).with_for_update())
        right = _verify(user.password_hash if user is not None else _DUMMY, password)
        ok = user is not None and right and user.active
        t = now()
        if user is not None and user.locked_until is not None and user.locked_until > t:
            store.audit(s, name, "login_refused", "user", name, after={"why": "locked"})
            return None, "locked"
        if pair_locked:
            if not ok:
                guard.failed(name, client)
            if user is not None:
                after = {"why": "locked_for_client", "client": client}
                store.audit(s, name, "login_refused", "user", name, after=after)
            return None, "locked"
        if ok:
            if HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = HASHER.hash(password)
            user.failed_logins, user.locked_until = 0, None
            if guard is not None:
                guard.succeeded(name, client)
            store.audit(s, name, "login", "user", name)
            return Account(user.id, user.username, user.role), "ok"
        if guard is None:
            return _failed_in_a_row(store, s, user, name, t, max_failures, lock_minutes)
        pair_now = guard.failed(name, client)
        if user is None:
            return None, "locked" if pair_now else "bad"
        user.failed_logins = (user.failed_logins or 0) + 1
        clients = guard.clients_of(name)
        if user.failed_logins >= max_failures * lock_clients and clients >= lock_clients:
            user.locked_until = t + timedelta(minutes=lock_minutes)
            user.failed_logins = 0
            after = {"locked_until": user.locked_until, "clients": clients}
            store.audit(s, name, "lock", "user", name, after=after)
            return None, "locked"
        after = {"failed_logins": user.failed_logins, "client": client}
        if pair_now:
            after["locked_for_client"] = True
        store.audit(s, name, "login_failed", "user", name, after=after)
        return None, "locked" if pair_now else "bad"


def _failed_in_a_row(
    store: Store, s, user: User | None, name: str, t, max_failures: int, lock_minutes: int
) -> tuple[None, str]:
    """A failure counted on the account alone: `max_failures` in a row lock it."""
    if user is None:
        return None, "bad"
    user.failed_logins = (user.failed_logins or 0) + 1
    after = {"failed_logins": user.failed_logins}
    if user.failed_logins >= max_failures:
        user.locked_until = t + timedelta(minutes=lock_minutes)
        user.failed_logins = 0
        store.audit(s, name, "lock", "user", name, after={"locked_until": user.locked_until})
        return None, "locked"
    store.audit(s, name, "login_failed", "user", name, after=after)
    return None, "bad"


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- sessions ---------------------------------------------------------------------------------
def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(store: Store, account: Account, hours: float = 8) -> str:
    token = secrets.token_urlsafe(32)
    t = now()
    with store.session.begin() as s:
        s.add(
            WebSession(
                token_hash=_token_hash(token),
                user_id=account.id,
                created_at=t,
                last_seen_at=t,
                expires_at=t + timedelta(hours=hours),
            )
        )
    return token


def session_account(store: Store, token: str, idle_minutes: float = 60) -> Account | None:
    """The account of a live session (not expired, idle less than `idle_minutes`, user active)."""
    t = now()
    with store.session.begin() as s:
        ws = s.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
        if ws is None:
            return None
        user = s.get(User, ws.user_id)
        idle = t - ws.last_seen_at > timedelta(minutes=idle_minutes)
        if user is None or not user.active or ws.expires_at <= t or idle:
            s.delete(ws)
            return None
        if t - ws.last_seen_at > timedelta(minutes=1):  # one write a minute at most
            ws.last_seen_at = t
        return Account(user.id, user.username, user.role)


def close_session(store: Store, token: str, actor: str | None = None) -> None:
    with store.session.begin() as s:
        s.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))
        if actor:
            store.audit(s, actor, "logout", "user", actor)
