"""A machine-readable code burned into the top of video frames.

The synthetic camera writes a frame counter and the capture time into every frame, so
that a receiver can measure end-to-end latency and count lost frames by looking at the
decoded picture alone, whatever happened to it in between (H.264, MPEG-TS, WebRTC).

Layout
======

The code is a grid of square blocks in the top-left corner of the frame:

* ``COLUMNS`` (40) blocks per row and ``ROWS`` (3) rows, so 120 bits.
* The block side is ``frame_width // COLUMNS`` pixels (16 px for a 640 px wide frame),
  so the code covers the full frame width and scales with the picture: a receiver that
  rescales the video still finds it. For 640x360 the code is the top 640x48 pixels.
* Bits are read left to right, then top to bottom (row 0 first). Bit ``i`` sits in the
  block at column ``i % 40``, row ``i // 40``. A white block (255, 255, 255) is a ``1``,
  a black block (0, 0, 0) a ``0``.
* The 120 bits, most significant bit first within each field, are:

  ====== ====== ==============================================================
  bits   width  field
  ====== ====== ==============================================================
  0-7    8      sync pattern ``0xB2`` (``10110010``), tells "a code is here"
  8-39   32     frame counter, unsigned, wraps at 2**32
  40-103 64     capture time, microseconds since the Unix epoch, unsigned
  104-119 16    CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the 12 bytes
                counter (4, big-endian) + capture time (8, big-endian)
  ====== ====== ==============================================================

Decoding reads the mean brightness of the central half of each block (the edges are
where compression rings) and thresholds it at mid-grey. A frame without a valid sync
pattern and checksum decodes to ``None``.

Why 16 px blocks: H.264 codes 16x16 macroblocks, so each block is one flat macroblock
(or four flat 8x8 transforms) that even a low bit rate reproduces as nearly flat black or
white.
"""

from __future__ import annotations

import binascii
import struct

import numpy as np
import numpy.typing as npt

COLUMNS = 40
ROWS = 3
BITS = COLUMNS * ROWS
SYNC = 0xB2
_SYNC_BITS = 8
_COUNTER_MAX = 2**32
_TS_MAX = 2**64
_WHITE = 255

type RGBFrame = npt.NDArray[np.uint8]


def block_size(width: int) -> int:
    """Return the side of one block in pixels for a frame of this width."""
    return width // COLUMNS


def code_height(width: int) -> int:
    """Return how many rows of pixels at the top of the frame the code covers."""
    return block_size(width) * ROWS


def _crc16(data: bytes) -> int:
    # binascii.crc_hqx is CRC-CCITT (poly 0x1021); init 0xFFFF makes it CCITT-FALSE.
    return binascii.crc_hqx(data, 0xFFFF)


def _payload_bits(counter: int, ts_us: int) -> npt.NDArray[np.bool_]:
    body = struct.pack(">IQ", counter, ts_us)
    word = bytes([SYNC]) + body + struct.pack(">H", _crc16(body))
    return np.unpackbits(np.frombuffer(word, dtype=np.uint8)).astype(np.bool_)


def _check_frame(frame: RGBFrame) -> int:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError("frame must be an HxWx3 uint8 RGB array")
    size = block_size(frame.shape[1])
    if size < 2 or frame.shape[0] < size * ROWS:
        raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} is too small for a block code")
    return size


def encode_blockcode(frame: RGBFrame, counter: int, ts_us: int) -> RGBFrame:
    """Burn ``counter`` and ``ts_us`` into the top of ``frame`` in place and return it.

    ``counter`` is taken modulo 2**32. ``ts_us`` must fit in 64 unsigned bits.
    """
    size = _check_frame(frame)
    if not 0 <= ts_us < _TS_MAX:
        raise ValueError("ts_us must be a non-negative 64-bit integer")
    bits = _payload_bits(counter % _COUNTER_MAX, ts_us)
    # One value per block, then blown up to pixels with a single repeat per axis,
    # which is much cheaper than drawing 120 rectangles every frame.
    grid = (bits.reshape(ROWS, COLUMNS).astype(np.uint8)) * _WHITE
    pixels = np.repeat(np.repeat(grid, size, axis=0), size, axis=1)
    frame[: size * ROWS, : size * COLUMNS, :] = pixels[:, :, np.newaxis]
    return frame


def decode_blockcode(frame: RGBFrame) -> tuple[int, int] | None:
    """Read ``(counter, ts_us)`` from the top of ``frame``, or ``None`` if there is no code."""
    try:
        size = _check_frame(frame)
    except ValueError:
        return None
    band = frame[: size * ROWS, : size * COLUMNS, :].astype(np.float32).mean(axis=2)
    cells = band.reshape(ROWS, size, COLUMNS, size)
    lo, hi = size // 4, size - size // 4
    levels = cells[:, lo:hi, :, lo:hi].mean(axis=(1, 3))
    bits = (levels.reshape(BITS) >= 128.0).astype(np.uint8)
    word = np.packbits(bits).tobytes()
    if word[0] != SYNC:
        return None
    body, crc = word[1:13], struct.unpack(">H", word[13:15])[0]
    if _crc16(body) != crc:
        return None
    counter, ts_us = struct.unpack(">IQ", body)
    return int(counter), int(ts_us)
