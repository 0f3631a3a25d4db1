"""The pre-roll: the last few seconds of encoded video, kept so a clip can start before
the ring or motion that caused it.

Packets are kept as they came (nothing is decoded), so the ring always starts on a
keyframe: a clip cut from it must be decodable from its first byte. It is bounded twice,
by time and by bytes, so a source that suddenly sends far more than its bitrate (or a
broken one that never sends a keyframe) cannot grow it without limit.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from .packet import VIDEO_CLOCK_RATE, VideoPacket

# Room for the part of a GOP that lies before the pre-roll window (the protocol caps a
# GOP at 2 s): the ring can only be cut at keyframes, so it holds up to this much more.
GOP_ALLOWANCE_SECONDS: Final = 2.0


def preroll_byte_budget(seconds: float, max_bitrate: int, hard_cap: int) -> int:
    """Bytes the ring may hold: ``max_bitrate`` (bits/s) over the window plus one GOP,
    never more than ``hard_cap``."""
    if max_bitrate <= 0 or hard_cap <= 0:
        raise ValueError("bitrate and byte cap must be positive")
    expected = int(max_bitrate / 8 * (seconds + GOP_ALLOWANCE_SECONDS))
    return max(1, min(hard_cap, expected))


class PreRollBuffer:
    """A keyframe-aligned ring of the last ``seconds`` of packets, at most ``max_bytes``.

    Packets must carry a ``dts`` on the 90 kHz clock, in increasing order (the recorder
    normalises them). The ring holds at least ``seconds`` once that much has arrived, and
    less than ``seconds`` plus one GOP.
    """

    def __init__(self, seconds: float, max_bytes: int) -> None:
        if seconds < 0 or max_bytes < 1:
            raise ValueError("pre-roll length must be >= 0 and the byte cap positive")
        self._window = round(seconds * VIDEO_CLOCK_RATE)
        self._max_bytes = max_bytes
        self._packets: deque[VideoPacket] = deque()
        # dts of every keyframe in the ring, oldest first: the only places it may be cut.
        self._keyframes: deque[int] = deque()
        self._bytes = 0
        self.dropped_packets = 0

    @property
    def max_bytes(self) -> int:
        """The byte cap."""
        return self._max_bytes

    @property
    def bytes(self) -> int:
        """Payload bytes held."""
        return self._bytes

    @property
    def seconds(self) -> float:
        """Stream time from the first packet held to the last (0 when fewer than two)."""
        if len(self._packets) < 2:
            return 0.0
        return (_dts(self._packets[-1]) - _dts(self._packets[0])) / VIDEO_CLOCK_RATE

    def __len__(self) -> int:
        return len(self._packets)

    def packets(self) -> tuple[VideoPacket, ...]:
        """Everything held, oldest first; the first packet is a keyframe."""
        return tuple(self._packets)

    def since(self, dts: int) -> tuple[VideoPacket, ...]:
        """Packets from the last keyframe at or before ``dts`` on (or all, if none is)."""
        start = None
        for keyframe_dts in self._keyframes:
            if keyframe_dts > dts:
                break
            start = keyframe_dts
        if start is None:
            return self.packets()
        return tuple(packet for packet in self._packets if _dts(packet) >= start)

    def first_dts(self) -> int | None:
        """dts of the oldest packet held."""
        return _dts(self._packets[0]) if self._packets else None

    def clear(self) -> None:
        """Forget everything (the next packet kept will be a keyframe)."""
        self._packets.clear()
        self._keyframes.clear()
        self._bytes = 0

    def push(self, packet: VideoPacket) -> None:
        """Add the newest packet, then trim the oldest GOPs that are no longer needed."""
        dts = _dts(packet)
        if self._packets and dts <= _dts(self._packets[-1]):
            # Time went backwards: what is held no longer lines up with what comes.
            self.clear()
        if not self._packets and not packet.is_keyframe:
            self.dropped_packets += 1
            return
        self._packets.append(packet)
        self._bytes += packet.size
        if packet.is_keyframe:
            self._keyframes.append(dts)
        self._trim(dts)

    def _trim(self, newest: int) -> None:
        # Drop the oldest GOP while the rest still covers the window.
        while len(self._keyframes) >= 2 and self._keyframes[1] <= newest - self._window:
            self._drop_first_gop()
        while self._bytes > self._max_bytes:
            if len(self._keyframes) >= 2:
                self._drop_first_gop()
            else:
                # One GOP bigger than the whole budget: no keyframe-aligned part of it
                # fits, so start again at the next keyframe.
                self.dropped_packets += len(self._packets)
                self.clear()

    def _drop_first_gop(self) -> None:
        self._keyframes.popleft()
        next_keyframe = self._keyframes[0]
        while _dts(self._packets[0]) < next_keyframe:
            packet = self._packets.popleft()
            self._bytes -= packet.size


def _dts(packet: VideoPacket) -> int:
    assert packet.dts is not None, "the recorder normalises packets before the ring"
    return packet.dts
