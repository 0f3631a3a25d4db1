"""Just enough H.264 bitstream handling to pass a stream through untouched.

We never decode. We split start-code (Annex-B) access units into NAL units, read the
sequence parameter set to learn the profile, and peek at slice headers to spot B-frames.
Every parser here raises only :class:`BitstreamError` (or its subclass
:class:`InvalidSps`) on bad input, because the bytes come from a device on the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from .exceptions import BitstreamError, InvalidSps

START_CODE: Final = b"\x00\x00\x00\x01"

NAL_SLICE: Final = 1
NAL_IDR: Final = 5
NAL_SEI: Final = 6
NAL_SPS: Final = 7
NAL_PPS: Final = 8
NAL_AUD: Final = 9

PROFILE_BASELINE: Final = 66
PROFILE_MAIN: Final = 77
PROFILE_EXTENDED: Final = 88
PROFILE_HIGH: Final = 100

# Profiles whose SPS carries chroma format, bit depth and scaling lists (7.3.2.1.1).
_HIGH_FAMILY: Final = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})

_PROFILE_NAMES: Final = {
    44: "CAVLC 4:4:4 intra",
    66: "baseline",
    77: "main",
    88: "extended",
    100: "high",
    110: "high 10",
    122: "high 4:2:2",
    244: "high 4:4:4 predictive",
}

# Slice types 0..9 (7.4.3); 1 and 6 are B.
_B_SLICE_TYPES: Final = frozenset({1, 6})

# Limits from the standard; anything beyond them is garbage, not a big picture.
_MAX_MBS_PER_SIDE: Final = 1024
_MAX_UE_LEADING_ZEROS: Final = 31


# --- NAL units -------------------------------------------------------------------------


def is_annexb(data: bytes) -> bool:
    """True when ``data`` starts with a 3- or 4-byte start code."""
    return data.startswith((b"\x00\x00\x01", START_CODE))


def iter_nal_units(data: bytes) -> Iterator[bytes]:
    """Yield the NAL units of an Annex-B byte string, without their start codes.

    Bytes before the first start code are ignored; zero bytes trailing a NAL unit
    (``trailing_zero_8bits`` or the first byte of a 4-byte start code) are stripped.
    """
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = data.find(b"\x00\x00\x01", begin)
        end = len(data) if nxt == -1 else nxt
        nal = data[begin:end].rstrip(b"\x00")
        if nal:
            yield nal
        start = nxt


def annexb_join(nals: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Concatenate NAL units into one Annex-B byte string."""
    return b"".join(START_CODE + nal for nal in nals)


def parameter_sets(access_unit: bytes) -> tuple[bytes | None, bytes | None]:
    """The first SPS and PPS NAL units found in an Annex-B access unit, if any."""
    sps: bytes | None = None
    pps: bytes | None = None
    for nal in iter_nal_units(access_unit):
        kind = nal[0] & 0x1F
        if kind == NAL_SPS and sps is None:
            sps = nal
        elif kind == NAL_PPS and pps is None:
            pps = nal
        elif kind in (NAL_SLICE, NAL_IDR):
            # Parameter sets for this picture come before its first slice.
            break
    return sps, pps


# --- Bit reading -------------------------------------------------------------------------


def unescape_rbsp(payload: bytes) -> bytes:
    """Remove emulation prevention bytes (``00 00 03`` -> ``00 00``)."""
    if b"\x00\x00\x03" not in payload:
        return payload
    out = bytearray()
    zeros = 0
    for byte in payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _BitReader:
    """MSB-first bit reader with the Exp-Golomb codes of clause 9.1."""

    __slots__ = ("_bit", "_data", "_error", "_total")

    def __init__(self, data: bytes, error: type[BitstreamError]) -> None:
        self._data = data
        self._bit = 0
        self._total = len(data) * 8
        self._error = error

    def u(self, bits: int) -> int:
        if self._bit + bits > self._total:
            raise self._error("ran out of bits")
        value = 0
        for _ in range(bits):
            byte = self._data[self._bit >> 3]
            value = (value << 1) | ((byte >> (7 - (self._bit & 7))) & 1)
            self._bit += 1
        return value

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > _MAX_UE_LEADING_ZEROS:
                raise self._error("Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)

    def ue_max(self, limit: int, what: str) -> int:
        value = self.ue()
        if value > limit:
            raise self._error(f"{what} {value} is out of range")
        return value


# --- Sequence parameter set ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpsInfo:
    """What passthrough needs to know from a sequence parameter set."""

    profile_idc: int
    constraint_flags: int  # the whole byte: constraint_set0_flag is the top bit
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    width: int
    height: int
    frame_mbs_only: bool
    pic_order_cnt_type: int
    max_num_reorder_frames: int | None  # None when the VUI does not say

    def constraint_set(self, index: int) -> bool:
        """``constraint_set<index>_flag`` (0 to 5)."""
        return bool(self.constraint_flags & (0x80 >> index))

    @property
    def profile_name(self) -> str:
        """A readable profile name, e.g. ``constrained baseline``."""
        if self.profile_idc == PROFILE_BASELINE and self.constraint_set(1):
            return "constrained baseline"
        if self.profile_idc == PROFILE_HIGH and self.constraint_set(4) and self.constraint_set(5):
            return "constrained high"
        return _PROFILE_NAMES.get(self.profile_idc, f"profile {self.profile_idc}")

    @property
    def profile_level_id(self) -> str:
        """The SDP ``profile-level-id`` (RFC 6184), e.g. ``42e01f``."""
        return f"{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"

    @property
    def reorders_frames(self) -> bool | None:
        """Whether output order can differ from decode order (B-frames), if known."""
        if self.profile_idc == PROFILE_BASELINE or self.constraint_set(0):
            return False  # baseline-conformant streams have no B slices
        if self.pic_order_cnt_type == 2:
            return False  # POC type 2 means output order is decode order
        if self.max_num_reorder_frames is not None:
            return self.max_num_reorder_frames > 0
        return None


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse an SPS NAL unit (header byte included, no start code).

    Raises :class:`InvalidSps` for anything malformed. A damaged VUI only loses the
    reorder hint; the rest of the SPS is still returned.
    """
    if len(nal) < 4:
        raise InvalidSps("SPS too short")
    if nal[0] & 0x80 or nal[0] & 0x1F != NAL_SPS:
        raise InvalidSps("not an SPS NAL unit")
    reader = _BitReader(unescape_rbsp(nal[1:]), InvalidSps)
    profile_idc = reader.u(8)
    constraint_flags = reader.u(8)
    level_idc = reader.u(8)
    sps_id = reader.ue_max(31, "seq_parameter_set_id")

    # Only the High family carries the chroma fields; the others are 4:2:0.
    chroma_format_idc, separate_colour_planes = (
        _parse_chroma(reader) if profile_idc in _HIGH_FAMILY else (1, False)
    )
    reader.ue_max(12, "log2_max_frame_num_minus4")
    pic_order_cnt_type = _parse_pic_order(reader)
    reader.ue_max(32, "max_num_ref_frames")
    reader.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue_max(_MAX_MBS_PER_SIDE - 1, "pic_width_in_mbs_minus1") + 1
    height_units = reader.ue_max(_MAX_MBS_PER_SIDE - 1, "pic_height_in_map_units_minus1") + 1
    frame_mbs_only = reader.flag()
    if not frame_mbs_only:
        reader.u(1)  # mb_adaptive_frame_field_flag
    reader.u(1)  # direct_8x8_inference_flag

    width = width_mbs * 16
    height = (2 - int(frame_mbs_only)) * height_units * 16
    if reader.flag():  # frame_cropping_flag
        crop_x, crop_y = _crop_units(chroma_format_idc, separate_colour_planes, frame_mbs_only)
        left, right, top, bottom = (reader.ue() for _ in range(4))
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise InvalidSps("cropping removes the whole picture")

    max_num_reorder_frames: int | None = None
    if reader.flag():  # vui_parameters_present_flag
        try:
            max_num_reorder_frames = _parse_vui_reorder(reader)
        except InvalidSps:
            max_num_reorder_frames = None

    return SpsInfo(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        sps_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        width=width,
        height=height,
        frame_mbs_only=frame_mbs_only,
        pic_order_cnt_type=pic_order_cnt_type,
        max_num_reorder_frames=max_num_reorder_frames,
    )


def _parse_chroma(reader: _BitReader) -> tuple[int, bool]:
    """The High family's chroma fields (7.3.2.1.1); returns the chroma format and
    whether the colour planes are coded separately."""
    chroma_format_idc = reader.ue_max(3, "chroma_format_idc")
    separate_colour_planes = reader.flag() if chroma_format_idc == 3 else False
    reader.ue_max(6, "bit_depth_luma_minus8")
    reader.ue_max(6, "bit_depth_chroma_minus8")
    reader.u(1)  # qpprime_y_zero_transform_bypass_flag
    if reader.flag():  # seq_scaling_matrix_present_flag
        for index in range(8 if chroma_format_idc != 3 else 12):
            if reader.flag():
                _skip_scaling_list(reader, 16 if index < 6 else 64)
    return chroma_format_idc, separate_colour_planes


def _parse_pic_order(reader: _BitReader) -> int:
    """pic_order_cnt_type and the fields that follow it; returns the type."""
    pic_order_cnt_type = reader.ue_max(2, "pic_order_cnt_type")
    if pic_order_cnt_type == 0:
        reader.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")
    elif pic_order_cnt_type == 1:
        reader.u(1)  # delta_pic_order_always_zero_flag
        reader.se()  # offset_for_non_ref_pic
        reader.se()  # offset_for_top_to_bottom_field
        cycle = reader.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")
        for _ in range(cycle):
            reader.se()
    return pic_order_cnt_type


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta = reader.se()
            if not -128 <= delta <= 127:
                raise InvalidSps("delta_scale out of range")
            next_scale = (last_scale + delta + 256) % 256
        last_scale = next_scale or last_scale


def _crop_units(chroma: int, separate_planes: bool, frame_mbs_only: bool) -> tuple[int, int]:
    fields = 2 - int(frame_mbs_only)
    if chroma == 0 or separate_planes:
        return 1, fields
    sub_width = 1 if chroma == 3 else 2
    sub_height = 2 if chroma == 1 else 1
    return sub_width, sub_height * fields


def _parse_vui_reorder(reader: _BitReader) -> int | None:
    """Walk the VUI (E.1.1) up to ``max_num_reorder_frames``."""
    # aspect_ratio_info_present_flag, then aspect_ratio_idc; 255 is Extended_SAR
    if reader.flag() and reader.u(8) == 255:
        reader.u(32)
    if reader.flag():  # overscan_info_present_flag
        reader.u(1)
    if reader.flag():  # video_signal_type_present_flag
        reader.u(4)
        if reader.flag():  # colour_description_present_flag
            reader.u(24)
    if reader.flag():  # chroma_loc_info_present_flag
        reader.ue()
        reader.ue()
    if reader.flag():  # timing_info_present_flag
        reader.u(32)
        reader.u(32)
        reader.u(1)
    nal_hrd = reader.flag()
    if nal_hrd:
        _skip_hrd(reader)
    vcl_hrd = reader.flag()
    if vcl_hrd:
        _skip_hrd(reader)
    if nal_hrd or vcl_hrd:
        reader.u(1)  # low_delay_hrd_flag
    reader.u(1)  # pic_struct_present_flag
    if not reader.flag():  # bitstream_restriction_flag
        return None
    reader.u(1)  # motion_vectors_over_pic_boundaries_flag
    for _ in range(4):  # max_bytes_per_pic_denom .. log2_max_mv_length_vertical
        reader.ue()
    return reader.ue_max(16, "max_num_reorder_frames")


def _skip_hrd(reader: _BitReader) -> None:
    count = reader.ue_max(31, "cpb_cnt_minus1") + 1
    reader.u(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(count):
        reader.ue()
        reader.ue()
        reader.u(1)
    reader.u(20)  # four 5-bit delay/offset lengths


# --- Slices ------------------------------------------------------------------------------


def slice_type(nal: bytes) -> int:
    """``slice_type`` (0..9) of a coded slice NAL unit."""
    if not nal or nal[0] & 0x1F not in (NAL_SLICE, NAL_IDR):
        raise BitstreamError("not a coded slice")
    # The two fields we need sit in the first few bytes; unescaping more is waste.
    reader = _BitReader(unescape_rbsp(nal[1:16]), BitstreamError)
    reader.ue()  # first_mb_in_slice
    return reader.ue_max(9, "slice_type")


def continues_picture(data: bytes) -> bool:
    """True when the first coded slice in ``data`` is not the first of its picture.

    Its ``first_mb_in_slice`` is above zero, so the picture began in bytes before these:
    some RTSP demuxers hand out the slices of one picture as separate packets.
    """
    for nal in iter_nal_units(data):
        if nal[0] & 0x1F in (NAL_SLICE, NAL_IDR):
            reader = _BitReader(unescape_rbsp(nal[1:16]), BitstreamError)
            return reader.ue() > 0
    return False


def has_b_slice(access_unit: bytes) -> bool:
    """True when the first slice of an Annex-B access unit is a B slice."""
    for nal in iter_nal_units(access_unit):
        if nal[0] & 0x1F in (NAL_SLICE, NAL_IDR):
            return slice_type(nal) in _B_SLICE_TYPES
    return False


# --- Passthrough decision ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileDecision:
    """Whether a stream can go to browsers as it is, and why."""

    profile: str
    profile_level_id: str
    width: int
    height: int
    needs_transcode: bool
    reason: str

    @property
    def passthrough(self) -> bool:
        """The opposite of :attr:`needs_transcode`."""
        return not self.needs_transcode


def decide_profile(sps: SpsInfo, *, b_frames_seen: bool = False) -> ProfileDecision:
    """Browsers decode constrained baseline, baseline and main without B-frames in
    WebRTC; everything else would have to be transcoded to baseline on the hub."""
    name = sps.profile_name
    needs_transcode = True
    if sps.profile_idc == PROFILE_BASELINE:
        needs_transcode = False
        reason = f"{name} profile: passed through unchanged"
    elif sps.profile_idc == PROFILE_MAIN and b_frames_seen:
        reason = (
            "main profile with B-frames: browsers' WebRTC decoders expect no frame "
            "reordering, so the stream must be transcoded to baseline; turn B-frames off "
            "in the camera's encoder settings to avoid the CPU cost"
        )
    elif sps.profile_idc == PROFILE_MAIN:
        needs_transcode = False
        if sps.reorders_frames is False:
            reason = "main profile without B-frames: passed through unchanged"
        else:
            reason = "main profile, no B-frames seen so far: passed through unchanged"
    else:
        reason = (
            f"{name} profile is not safe for browsers' WebRTC decoders, so the stream must "
            "be transcoded to baseline; set the camera's encoder to baseline or main "
            "profile without B-frames to avoid the CPU cost"
        )
    return ProfileDecision(
        profile=name,
        profile_level_id=sps.profile_level_id,
        width=sps.width,
        height=sps.height,
        needs_transcode=needs_transcode,
        reason=reason,
    )


class ProfileMonitor:
    """Keeps a :class:`ProfileDecision` up to date as access units go by.

    The SPS alone cannot always rule B-frames out (main profile without a VUI reorder
    hint), so non-keyframes are checked too: the first B slice, or a packet presented
    before it is decoded, flips the decision to transcode.
    """

    def __init__(self) -> None:
        self._sps: SpsInfo | None = None
        self._sps_nal: bytes | None = None
        self._b_frames_seen = False
        self._last_pts: int | None = None
        self.decision: ProfileDecision | None = None

    @property
    def sps(self) -> SpsInfo | None:
        """The last SPS that parsed."""
        return self._sps

    def observe(
        self, access_unit: bytes, *, is_keyframe: bool, pts: int | None, dts: int | None
    ) -> bool:
        """Look at one Annex-B access unit; return True when the decision changed."""
        if is_keyframe:
            sps_nal, _ = parameter_sets(access_unit)
            if sps_nal is not None and sps_nal != self._sps_nal:
                self.use_sps(sps_nal)
        # A constant pts-dts offset is common without B-frames, so only presentation
        # order going backwards counts as reordering.
        reordered = pts is not None and self._last_pts is not None and pts < self._last_pts
        if pts is not None:
            self._last_pts = pts
        if not is_keyframe and self._may_have_b_frames() and not self._b_frames_seen:
            try:
                b_slice = has_b_slice(access_unit)
            except BitstreamError:
                b_slice = False
            self._b_frames_seen = reordered or b_slice
        return self._update()

    def use_sps(self, sps_nal: bytes) -> None:
        """Take parameters from an SPS (in-band, or from the container's extradata)."""
        try:
            self._sps = parse_sps(sps_nal)
        except InvalidSps:
            return
        if self._sps_nal is not None:
            # New parameters (the owner changed the encoder settings): B-frames seen
            # under the old ones say nothing about the new stream.
            self._b_frames_seen = False
        self._sps_nal = sps_nal

    def _may_have_b_frames(self) -> bool:
        return self._sps is not None and self._sps.reorders_frames is not False

    def _update(self) -> bool:
        if self._sps is None:
            return False
        decision = decide_profile(self._sps, b_frames_seen=self._b_frames_seen)
        if decision == self.decision:
            return False
        self.decision = decision
        return True
