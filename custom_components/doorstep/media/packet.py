"""The unit the relay moves around: one H.264 access unit with its timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Final

# RTP carries H.264 on a 90 kHz clock and MPEG-TS uses the same one, so sources
# normalise to it and nobody downstream has to rescale.
VIDEO_CLOCK_RATE: Final = 90_000
VIDEO_TIME_BASE: Final = Fraction(1, VIDEO_CLOCK_RATE)


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One encoded picture as an Annex-B access unit (start-code delimited NAL units).

    Deliberately not an ``av.Packet``: it is immutable, so one instance can sit in many
    subscriber queues at once, and tests can build it from plain bytes.
    """

    payload: bytes
    pts: int | None
    dts: int | None
    is_keyframe: bool
    time_base: Fraction = VIDEO_TIME_BASE
    # True when the relay hands out a packet again from its GOP cache (a late join or a
    # picture-loss request): a sender should not pace these by their old timestamps.
    replayed: bool = False

    @property
    def size(self) -> int:
        """Payload length in bytes."""
        return len(self.payload)


# Opus (and WebRTC's audio) runs on a 48 kHz clock; audio packets are stamped in it.
AUDIO_CLOCK_RATE: Final = 48_000
AUDIO_TIME_BASE: Final = Fraction(1, AUDIO_CLOCK_RATE)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What a source's sound is, as the demuxer saw it (enough to decode it)."""

    codec: str
    sample_rate: int
    channels: int
    extradata: bytes | None = None


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One encoded piece of the doorbell's sound (one Opus packet, or another codec's).

    ``pts`` is on the same timeline as the video packets' (scaled to 48 kHz), so a
    recorder can put both in one file.
    """

    payload: bytes
    pts: int | None
    format: AudioFormat
    duration: int | None = None
    time_base: Fraction = AUDIO_TIME_BASE

    @property
    def size(self) -> int:
        """Payload length in bytes."""
        return len(self.payload)
