"""H.264 parsing: hand-built SPS, real encoder output, and fuzzing."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from hypothesis import given, strategies as st
import numpy as np
import pytest

from custom_components.doorstep.media import InvalidSps, decide_profile, parse_sps
from custom_components.doorstep.media.exceptions import BitstreamError
from custom_components.doorstep.media.h264 import (
    ProfileMonitor,
    annexb_join,
    continues_picture,
    iter_nal_units,
    parameter_sets,
    slice_type,
    unescape_rbsp,
)


class BitWriter:
    """Writes the SPS syntax of H.264 7.3.2.1.1, bit by bit."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, width: int, value: int) -> None:
        self.bits.extend((value >> (width - 1 - i)) & 1 for i in range(width))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() - 1, 0)
        self.u(code.bit_length(), code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def nal(self, header: int) -> bytes:
        bits = [*self.bits, 1]  # rbsp_stop_one_bit
        bits += [0] * (-len(bits) % 8)
        rbsp = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        return bytes([header]) + escape(rbsp)


def escape(rbsp: bytes) -> bytes:
    """Insert emulation prevention bytes."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


@dataclass
class Sps:
    profile_idc: int = 66
    constraints: int = 0xC0
    level_idc: int = 30
    chroma_format_idc: int = 1
    scaling_matrix: bool = False
    poc_type: int = 2
    width_mbs: int = 40
    height_mbs: int = 23
    crop_bottom: int = 4  # in 2-line units with 4:2:0: 368 -> 360 lines
    vui_reorder: int | None = None
    vui_timing: bool = True

    def build(self) -> bytes:
        w = BitWriter()
        w.u(8, self.profile_idc)
        w.u(8, self.constraints)
        w.u(8, self.level_idc)
        w.ue(0)  # seq_parameter_set_id
        if self.profile_idc in (100, 110, 122, 244):
            w.ue(self.chroma_format_idc)
            if self.chroma_format_idc == 3:
                w.u(1, 0)
            w.ue(0)
            w.ue(0)
            w.u(1, 0)
            w.u(1, int(self.scaling_matrix))
            if self.scaling_matrix:
                for index in range(8 if self.chroma_format_idc != 3 else 12):
                    w.u(1, 1)
                    for _ in range(16 if index < 6 else 64):
                        w.se(1)
        w.ue(0)  # log2_max_frame_num_minus4
        w.ue(self.poc_type)
        if self.poc_type == 0:
            w.ue(2)
        elif self.poc_type == 1:
            w.u(1, 0)
            w.se(-1)
            w.se(2)
            w.ue(2)
            w.se(3)
            w.se(-3)
        w.ue(1)  # max_num_ref_frames
        w.u(1, 0)
        w.ue(self.width_mbs - 1)
        w.ue(self.height_mbs - 1)
        w.u(1, 1)  # frame_mbs_only_flag
        w.u(1, 1)  # direct_8x8_inference_flag
        w.u(1, int(self.crop_bottom > 0))
        if self.crop_bottom:
            for value in (0, 0, 0, self.crop_bottom):
                w.ue(value)
        has_vui = self.vui_reorder is not None
        w.u(1, int(has_vui))
        if has_vui:
            w.u(1, 1)  # aspect_ratio_info_present_flag
            w.u(8, 255)
            w.u(16, 1)
            w.u(16, 1)
            w.u(1, 0)  # overscan
            w.u(1, 1)  # video_signal_type
            w.u(4, 5)
            w.u(1, 1)
            w.u(24, 0x010101)
            w.u(1, 0)  # chroma_loc
            w.u(1, int(self.vui_timing))
            if self.vui_timing:
                w.u(32, 1)
                w.u(32, 60)
                w.u(1, 1)
            w.u(1, 1)  # nal_hrd_parameters_present_flag
            w.ue(0)
            w.u(4, 0)
            w.u(4, 0)
            w.ue(1000)
            w.ue(1000)
            w.u(1, 0)
            w.u(20, 0)
            w.u(1, 0)  # vcl_hrd
            w.u(1, 0)  # low_delay_hrd_flag
            w.u(1, 0)  # pic_struct_present_flag
            w.u(1, 1)  # bitstream_restriction_flag
            w.u(1, 1)
            for value in (2, 1, 16, 16):
                w.ue(value)
            w.ue(self.vui_reorder or 0)
            w.ue(2)
        return w.nal(0x67)


def test_constrained_baseline() -> None:
    info = parse_sps(Sps().build())
    assert info.profile_name == "constrained baseline"
    assert info.profile_level_id == "42c01e"
    assert (info.width, info.height) == (640, 360)
    assert info.reorders_frames is False
    decision = decide_profile(info)
    assert decision.passthrough
    assert not decision.needs_transcode
    assert "constrained baseline" in decision.reason


def test_plain_baseline_passes_through() -> None:
    info = parse_sps(Sps(constraints=0x00, poc_type=0).build())
    assert info.profile_name == "baseline"
    assert decide_profile(info).passthrough


def test_main_without_reordering_in_vui() -> None:
    info = parse_sps(Sps(profile_idc=77, constraints=0x40, poc_type=0, vui_reorder=0).build())
    assert info.max_num_reorder_frames == 0
    assert info.reorders_frames is False
    assert decide_profile(info).passthrough


def test_main_with_b_frames_needs_transcode() -> None:
    info = parse_sps(Sps(profile_idc=77, constraints=0x40, poc_type=0, vui_reorder=2).build())
    assert info.reorders_frames is True
    assert decide_profile(info).passthrough  # nothing seen yet: benefit of the doubt
    decision = decide_profile(info, b_frames_seen=True)
    assert decision.needs_transcode
    assert "B-frames" in decision.reason


def test_main_without_vui_is_unknown_until_seen() -> None:
    info = parse_sps(Sps(profile_idc=77, constraints=0x00, poc_type=1).build())
    assert info.max_num_reorder_frames is None
    assert info.reorders_frames is None
    assert "so far" in decide_profile(info).reason


@pytest.mark.parametrize("chroma", [0, 1, 2, 3])
def test_high_profile_needs_transcode(chroma: int) -> None:
    info = parse_sps(
        Sps(
            profile_idc=100,
            constraints=0,
            level_idc=40,
            chroma_format_idc=chroma,
            scaling_matrix=True,
            poc_type=0,
            width_mbs=120,
            height_mbs=68,
            crop_bottom=0,
            vui_reorder=2,
            vui_timing=False,
        ).build()
    )
    assert info.profile_name == "high"
    assert info.chroma_format_idc == chroma
    assert (info.width, info.height) == (1920, 1088)
    assert info.max_num_reorder_frames == 2
    decision = decide_profile(info)
    assert decision.needs_transcode
    assert "high profile" in decision.reason
    assert "baseline" in decision.reason


def test_emulation_prevention_is_removed() -> None:
    assert unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00") == b"\x00\x00\x01\x00\x00\x00"
    assert unescape_rbsp(b"\x01\x02") == b"\x01\x02"
    # A width made of many zero bits makes the encoder escape; it must parse back.
    nal = Sps(width_mbs=1, height_mbs=1, crop_bottom=0, constraints=0).build()
    info = parse_sps(nal)
    assert (info.width, info.height) == (16, 16)


@pytest.mark.parametrize(
    "nal",
    [b"", b"\x67", b"\x67\x42\xc0", b"\x68\x42\xc0\x1e\xff", b"\xe7\x42\xc0\x1e\xff"],
)
def test_malformed_sps_raises_invalid_sps(nal: bytes) -> None:
    with pytest.raises(InvalidSps):
        parse_sps(nal)


def test_truncated_sps_raises_invalid_sps() -> None:
    nal = Sps(vui_reorder=0).build()
    with pytest.raises(InvalidSps):
        parse_sps(nal[:6])
    for cut in range(len(nal)):
        # Cutting into the VUI only loses the reorder hint; anything else is InvalidSps.
        try:
            info = parse_sps(nal[:cut])
        except InvalidSps:
            continue
        assert (info.width, info.height) == (640, 360)


@given(st.binary(max_size=64))
def test_fuzz_sps_raises_only_invalid_sps(body: bytes) -> None:
    with contextlib.suppress(InvalidSps):
        parse_sps(b"\x67" + body)


_VALID = Sps(profile_idc=100, constraints=0, scaling_matrix=True, vui_reorder=1).build()


@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=8))
def test_fuzz_mutated_sps_raises_only_invalid_sps(edits: list[tuple[int, int]]) -> None:
    nal = bytearray(_VALID)
    for position, value in edits:
        nal[position] = value
    with contextlib.suppress(InvalidSps):
        parse_sps(bytes(nal))


@given(st.binary(max_size=64))
def test_fuzz_other_parsers_raise_only_bitstream_errors(data: bytes) -> None:
    for call in (
        lambda: slice_type(b"\x41" + data),
        lambda: list(iter_nal_units(data)),
        lambda: parameter_sets(data),
        lambda: continues_picture(b"\x00\x00\x01\x41" + data),
    ):
        with contextlib.suppress(BitstreamError):
            call()


def test_nal_splitting_and_joining() -> None:
    nals = [b"\x67\x42\x01", b"\x68\xce", b"\x65\x88\x84\x00\x00"]
    annexb = b"\x00\x00\x01" + nals[0] + b"\x00\x00\x00\x01" + nals[1] + START + nals[2]
    assert list(iter_nal_units(annexb)) == [nals[0], nals[1], b"\x65\x88\x84"]
    assert list(iter_nal_units(annexb_join(nals))) == [nals[0], nals[1], b"\x65\x88\x84"]


START = b"\x00\x00\x00\x01"


def encode(profile: str, bframes: int, frames: int = 12) -> tuple[list[Any], bytes]:
    """Encode a tiny clip with libx264; returns its packets and extradata."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width = codec.height = 64
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, 30)  # type: ignore[assignment]  # the stub is too narrow
    codec.options = {
        "profile": profile,
        "preset": "veryfast",  # ultrafast would downgrade main/high to baseline
        "x264-params": f"bframes={bframes}:keyint=6:scenecut=0:b-adapt=0:threads=1",
    }
    packets: list[Any] = []
    rng = np.random.default_rng(1)
    for index in range(frames):
        image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    return packets, bytes(codec.extradata or b"")


def monitor_packets(profile: str, bframes: int) -> ProfileMonitor:
    packets, extradata = encode(profile, bframes)
    monitor = ProfileMonitor()
    for packet in packets:
        payload = bytes(packet)
        if packet.is_keyframe and b"\x00\x00\x01\x67" not in payload:
            payload = extradata + payload
        monitor.observe(payload, is_keyframe=packet.is_keyframe, pts=packet.pts, dts=packet.dts)
    return monitor


def test_monitor_passes_real_baseline_through() -> None:
    monitor = monitor_packets("baseline", 0)
    assert monitor.decision is not None
    assert monitor.decision.passthrough
    assert monitor.decision.profile == "constrained baseline"
    assert (monitor.decision.width, monitor.decision.height) == (64, 64)


def test_monitor_accepts_real_main_without_b_frames() -> None:
    monitor = monitor_packets("main", 0)
    assert monitor.decision is not None
    assert monitor.decision.profile == "main"
    assert monitor.decision.passthrough


def test_monitor_flags_real_main_with_b_frames() -> None:
    monitor = monitor_packets("main", 2)
    assert monitor.decision is not None
    assert monitor.decision.profile == "main"
    assert monitor.decision.needs_transcode


def test_monitor_flags_real_high() -> None:
    monitor = monitor_packets("high", 0)
    assert monitor.decision is not None
    assert monitor.decision.profile == "high"
    assert monitor.decision.needs_transcode
