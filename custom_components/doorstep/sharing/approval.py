"""Who may approve a release, decided on facts the Home Assistant glue gathers (I2).

The glue knows how the person is connected and can check a password; this module knows
what those facts must add up to. Keeping the rule here, free of Home Assistant, lets the
library tests walk every combination.

Two steps, because checking a password is slow and counts against the person:

1. :func:`refusal_before_proof`: is this a person in a login session, an admin, with a
   password to prove, not locked out, and did they bring what their account needs?
2. :func:`verdict`: given whether the password (and code) checked out, the refusal or
   how the person was verified, which the approval's audit entry records.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class SessionKind(StrEnum):
    """The kind of credential behind a connection (Home Assistant's refresh token types)."""

    # An interactive login: someone typed a password (or used trusted networks) in a browser.
    NORMAL = "normal"
    LONG_LIVED = "long_lived_access_token"
    SYSTEM = "system"
    # No connection at all: an automation, a script, a service call without a user.
    NONE = "none"


class Refusal(StrEnum):
    """Why an approval was refused; each value is also the person's translation key."""

    NEEDS_PERSON = "approval_needs_person"
    NEEDS_ADMIN = "approval_needs_admin"
    NEEDS_PASSWORD = "step_up_needs_password"  # noqa: S105 (a translation key)
    # Two-factor login through a module the card cannot check (Home Assistant's notify
    # codes, say): refused rather than approved on the password alone.
    MFA_UNSUPPORTED = "step_up_mfa_unsupported"
    CODE_REQUIRED = "step_up_code_required"
    FAILED = "step_up_failed"
    RATE_LIMITED = "step_up_rate_limited"
    PREVIEW_STALE = "preview_stale"
    IN_CARD_ONLY = "approve_in_card"


class Verification(StrEnum):
    """How the approving person proved who they are, as the audit entry records it."""

    PASSWORD = "password"  # noqa: S105 (a method's name)
    PASSWORD_TOTP = "password+totp"  # noqa: S105


@dataclass(frozen=True, slots=True, kw_only=True)
class StepUpFacts:
    """What the glue knows about the person asking to approve, before any proof is checked."""

    session: SessionKind
    user_id: str | None
    is_active: bool
    is_admin: bool
    is_system: bool
    is_read_only: bool
    has_password: bool
    has_totp: bool
    # Two-factor login set up with another module than TOTP (Home Assistant's notify
    # module, or a custom one). The person's login asks for that second factor, so
    # approving on the password alone would be weaker than logging in.
    has_other_mfa: bool
    code_given: bool


def refusal_before_proof(facts: StepUpFacts, *, locked_out: bool) -> Refusal | None:
    """The refusal that needs no password check, or None when the proof decides.

    The order matters to the person: a script is told it needs a person before anything
    about its account, and a locked-out person is not told whether a code would be asked.
    """
    if (
        facts.session is not SessionKind.NORMAL
        or facts.user_id is None
        or facts.is_system
        or not facts.is_active
    ):
        return Refusal.NEEDS_PERSON
    if not facts.is_admin or facts.is_read_only:
        return Refusal.NEEDS_ADMIN
    if not facts.has_password:
        return Refusal.NEEDS_PASSWORD
    if facts.has_other_mfa and not facts.has_totp:
        return Refusal.MFA_UNSUPPORTED
    if locked_out:
        return Refusal.RATE_LIMITED
    if facts.has_totp and not facts.code_given:
        return Refusal.CODE_REQUIRED
    return None


def verdict(facts: StepUpFacts, *, password_ok: bool, code_ok: bool) -> Refusal | Verification:
    """The outcome once the password (and, where set up, the code) has been checked.

    ``code_ok`` is ignored for a person without TOTP; with TOTP, both must hold.
    """
    if not password_ok:
        return Refusal.FAILED
    if facts.has_totp:
        return Verification.PASSWORD_TOTP if code_ok else Refusal.FAILED
    return Verification.PASSWORD


# A person gets this many wrong proofs in the window before further tries are refused
# unchecked: enough for typos, too few to guess a password or a 6-digit code.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=5)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FailureLimiter:
    """Failed proofs per person in a sliding window. Lives for one run of the hub."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: timedelta = FAILURE_WINDOW,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, key: str) -> deque[datetime]:
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def locked_out(self, key: str) -> bool:
        """Whether ``key`` has used up its tries for now."""
        return len(self._recent(key)) >= self._max

    def record_failure(self, key: str) -> None:
        self._recent(key)
        self._failures.setdefault(key, deque()).append(self._clock())
