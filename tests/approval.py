"""Approving in tests the way the card does: look at what would leave, then approve it.

The gate only approves with the ``confirm`` digest of a preview that still matches, so
every test that needs an approved request goes through here instead of calling
``approve`` with a made-up digest.
"""

from __future__ import annotations

from custom_components.doorstep.sharing import Actor, EgressGate, ShareRequest, SharingError


async def approve_seen(gate: EgressGate, request_id: str, actor: Actor) -> ShareRequest:
    """Preview ``request_id`` and approve exactly that as ``actor``.

    A request that cannot be previewed (closed, unknown, a malformed id) is still handed
    to ``approve``, so the caller sees the gate's own answer for it.
    """
    try:
        confirm = (await gate.preview(request_id)).confirm
    except SharingError:
        confirm = ""
    return await gate.approve(request_id, actor, confirm=confirm)
