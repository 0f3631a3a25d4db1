"""Pairing attempts and the lockout after too many wrong codes (protocol section 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
import time


@dataclass(frozen=True, slots=True)
class Locked:
    """Pairing is locked; try again after ``retry_after`` whole seconds."""

    retry_after: int


@dataclass(frozen=True, slots=True)
class WrongCode:
    """The code was wrong; ``attempts_left`` more before the lock."""

    attempts_left: int


@dataclass(frozen=True, slots=True)
class RightCode:
    """The code was right."""


type Verdict = Locked | WrongCode | RightCode


class PairingGuard:
    """Counts wrong codes in a row and locks pairing for a while after too many.

    While locked every attempt is refused, even with the right code, and refused attempts
    do not extend the lock: an attacker learns nothing and cannot keep the owner out for
    longer than one lock period at a time.
    """

    def __init__(
        self,
        max_attempts: int = 5,
        lock_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._max_attempts = max_attempts
        self._lock_seconds = lock_seconds
        self._clock = clock
        self._failures = 0
        self._locked_until: float | None = None

    def locked_for(self) -> float:
        """Seconds left in the current lock, 0 when not locked."""
        if self._locked_until is None:
            return 0.0
        left = self._locked_until - self._clock()
        if left <= 0:
            # The lock ran out: start counting afresh.
            self._locked_until = None
            self._failures = 0
            return 0.0
        return left

    def attempt(self, is_right: Callable[[], bool]) -> Verdict:
        """Judge one attempt. ``is_right`` is only called when pairing is not locked."""
        left = self.locked_for()
        if left > 0:
            return Locked(max(1, math.ceil(left)))
        if is_right():
            self._failures = 0
            return RightCode()
        self._failures += 1
        if self._failures >= self._max_attempts:
            self._locked_until = self._clock() + self._lock_seconds
        return WrongCode(self._max_attempts - self._failures)

    def reset(self) -> None:
        """Forget wrong attempts and any lock (factory reset)."""
        self._failures = 0
        self._locked_until = None
