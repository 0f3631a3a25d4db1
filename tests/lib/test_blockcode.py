"""The burned-in block code: exact round trips, rejection, and survival through H.264."""

from __future__ import annotations

import io

import av
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from reference_doorbell.blockcode import (
    COLUMNS,
    ROWS,
    RGBFrame,
    block_size,
    code_height,
    decode_blockcode,
    encode_blockcode,
)
from reference_doorbell.encoding import EncoderSettings, TsEncoder
from reference_doorbell.sources import SyntheticCamera

TS_NOW = 1_795_000_000_123_456


def _frame(width: int = 640, height: int = 360, fill: int = 90) -> RGBFrame:
    return np.full((height, width, 3), fill, dtype=np.uint8)


@settings(max_examples=50, deadline=None)
@given(counter=st.integers(0, 2**32 - 1), ts_us=st.integers(0, 2**64 - 1))
def test_round_trip_any_value(counter: int, ts_us: int) -> None:
    frame = encode_blockcode(_frame(), counter, ts_us)
    assert decode_blockcode(frame) == (counter, ts_us)


def test_layout_is_documented_geometry() -> None:
    frame = encode_blockcode(_frame(fill=128), 7, TS_NOW)
    size = block_size(640)
    assert size == 16
    assert code_height(640) == 48 == ROWS * size
    band = frame[: ROWS * size, : COLUMNS * size]
    # Every block is flat black or white; nothing below the band is touched.
    assert set(np.unique(band)) <= {0, 255}
    assert (frame[ROWS * size :] == 128).all()
    # The sync byte 0xB2 = 10110010 opens row 0.
    first_eight = [int(frame[8, 8 + 16 * i, 0] == 255) for i in range(8)]
    assert first_eight == [1, 0, 1, 1, 0, 0, 1, 0]


def test_counter_wraps() -> None:
    assert decode_blockcode(encode_blockcode(_frame(), 2**32 + 5, TS_NOW)) == (5, TS_NOW)


def test_frames_without_a_code_decode_to_none() -> None:
    rng = np.random.default_rng(1)
    assert decode_blockcode(_frame()) is None
    assert decode_blockcode(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)) is None
    assert decode_blockcode(np.zeros((10, 10, 3), dtype=np.uint8)) is None


def test_corrupted_checksum_is_rejected() -> None:
    frame = encode_blockcode(_frame(), 1234, TS_NOW)
    # Flip one data block (bit 20, inside the counter) from whatever it was.
    y, x = 8, 20 * 16 + 8
    frame[0:16, 20 * 16 : 21 * 16] = 255 - frame[y, x]
    assert decode_blockcode(frame) is None


def test_scales_with_frame_size() -> None:
    big = encode_blockcode(_frame(1280, 720), 99, TS_NOW)
    assert decode_blockcode(big) == (99, TS_NOW)
    # Downscaling the picture keeps the code readable (blocks shrink with it).
    small = big[::2, ::2].copy()
    assert decode_blockcode(small) == (99, TS_NOW)


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="RGB"):
        encode_blockcode(np.zeros((360, 640), dtype=np.uint8), 1, 1)
    with pytest.raises(ValueError, match="too small"):
        encode_blockcode(np.zeros((20, 640, 3), dtype=np.uint8), 1, 1)
    with pytest.raises(ValueError, match="64-bit"):
        encode_blockcode(_frame(), 1, -1)


def test_survives_h264_encode_and_decode() -> None:
    camera = SyntheticCamera("Front door", 640, 360)
    encoder = TsEncoder(EncoderSettings())
    sent: list[tuple[int, int]] = []
    data = bytearray()
    try:
        for counter in range(20):
            frame = camera.read()
            ts_us = TS_NOW + counter * 66_666
            encode_blockcode(frame, counter, ts_us)
            sent.append((counter, ts_us))
            for chunk in encoder.encode(frame):
                data += chunk.data
    finally:
        encoder.close()
    with av.open(io.BytesIO(bytes(data)), mode="r", format="mpegts") as container:
        received = [
            decode_blockcode(np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8))
            for f in container.decode(video=0)
        ]
    assert received == sent
