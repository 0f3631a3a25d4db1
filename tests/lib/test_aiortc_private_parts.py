"""The parts of aiortc that are not its public API but that Doorstep relies on.

``media/webrtc.py`` reaches past aiortc's API in a few narrow places (its docstring says
why each is needed). The ``==1.16.0`` pin keeps them there today; these tests say which
one is gone, by name, the day an upgrade moves it, instead of a live-view test failing
somewhere downstream.
"""

from __future__ import annotations

import asyncio
import inspect

import aioice
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcicetransport import RTCIceGatherer
import pytest


def _source(function: object) -> str:
    return inspect.getsource(function)  # type: ignore[arg-type]


def test_ice_gatherer_keeps_its_aioice_connection_in_connection() -> None:
    """The ICE guard reaches the ICE agent through ``iceGatherer._connection``."""
    gatherer = RTCIceGatherer(iceServers=[])
    connection = getattr(gatherer, "_connection", None)
    assert connection is not None, "aiortc's RTCIceGatherer no longer has `_connection`"
    assert isinstance(connection, aioice.Connection), (
        f"RTCIceGatherer._connection is a {type(connection).__name__}, not aioice.Connection"
    )


@pytest.mark.parametrize(
    "attribute",
    [
        "stun_server",
        "turn_server",
        "get_component_candidates",
        "add_remote_candidate",
        "request_received",
    ],
)
def test_aioice_connection_has_what_the_ice_guard_wraps(attribute: str) -> None:
    connection = RTCIceGatherer(iceServers=[])._connection
    assert hasattr(connection, attribute), (
        f"aioice.Connection no longer has `{attribute}`, which the ICE guard replaces"
    )


def test_sender_answers_picture_loss_through_send_keyframe() -> None:
    """The session shadows ``_send_keyframe`` on its sender to resend the cached GOP."""
    assert callable(getattr(RTCRtpSender, "_send_keyframe", None)), (
        "aiortc's RTCRtpSender no longer has `_send_keyframe`"
    )
    assert "self._send_keyframe()" in _source(RTCRtpSender._handle_rtcp_packet), (
        "RTCRtpSender._handle_rtcp_packet no longer calls `_send_keyframe` for PLI/FIR"
    )


def test_sender_packs_encoded_packets_without_encoding() -> None:
    """Passthrough: ``_next_encoded_frame`` hands ``av.Packet`` s to ``H264Encoder.pack``."""
    assert callable(getattr(H264Encoder, "pack", None)), "H264Encoder no longer has `pack`"
    assert ".pack(data)" in _source(RTCRtpSender._next_encoded_frame), (
        "RTCRtpSender._next_encoded_frame no longer calls the encoder's `pack`"
    )


def test_peer_connection_connects_in_a_task_whose_frame_holds_it() -> None:
    """Closing a session awaits aiortc's ``__connect`` tasks, found by ``self`` in the
    coroutine's frame (``cr_frame.f_locals``)."""
    connect = getattr(RTCPeerConnection, "_RTCPeerConnection__connect", None)
    assert connect is not None, "aiortc's RTCPeerConnection no longer has `__connect`"
    assert inspect.iscoroutinefunction(connect), "RTCPeerConnection.__connect is not a coroutine"
    assert "self" in inspect.signature(connect).parameters
    for method in (RTCPeerConnection.setLocalDescription, RTCPeerConnection.setRemoteDescription):
        assert "ensure_future(self.__connect())" in _source(method), (
            f"RTCPeerConnection.{method.__name__} no longer starts `__connect` as a task"
        )


async def test_a_coroutine_frame_shows_its_self() -> None:
    """What the task scan reads: ``cr_frame`` and its ``f_locals``."""

    class Owner:
        async def run(self) -> None:
            await asyncio.sleep(0)

    owner = Owner()
    task = asyncio.ensure_future(owner.run())
    frame = getattr(task.get_coro(), "cr_frame", None)
    assert frame is not None, "coroutines no longer have `cr_frame`"
    assert frame.f_locals.get("self") is owner, "a coroutine's frame no longer shows `self`"
    await task
