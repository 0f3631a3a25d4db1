"""The gate's whole mutable state, in one place so the store can save and load it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import Requester, ShareRequest


@dataclass(slots=True)
class SharingState:
    requesters: dict[str, Requester] = field(default_factory=dict)
    requests: dict[str, ShareRequest] = field(default_factory=dict)
