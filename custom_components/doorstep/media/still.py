"""A JPEG still from the live stream, for devices that offer no snapshot of their own.

The relay keeps the newest keyframe for viewers that join, so a still costs one H.264
decode of that keyframe and one JPEG encode, in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Final

import av

from .exceptions import StreamError
from .relay import MediaRelay

# How many packets to look through for a keyframe before giving up.
_MAX_PACKETS: Final = 300


async def still_from_relay(relay: MediaRelay, *, within: float = 10.0) -> bytes:
    """The next keyframe the relay hands out (its cached one at once), as JPEG."""
    subscription = relay.subscribe(name="still", viewer=False)
    try:
        async with asyncio.timeout(within):
            for _ in range(_MAX_PACKETS):
                packet = await subscription.get()
                if packet.is_keyframe:
                    break
            else:
                raise StreamError("no keyframe in the stream")
    except TimeoutError as err:
        raise StreamError("no picture from the stream in time") from err
    finally:
        subscription.close()
    return await asyncio.to_thread(keyframe_to_jpeg, packet.payload)


def keyframe_to_jpeg(access_unit: bytes, quality: int = 4) -> bytes:
    """Blocking: decode one Annex-B H.264 keyframe (with SPS and PPS) and encode it.

    ``quality`` is MJPEG's qscale, 2 (best) to 31 (worst).
    """
    decoder = av.CodecContext.create("h264", "r")
    try:
        frames = [*decoder.decode(av.Packet(access_unit)), *decoder.decode(None)]
    except av.error.FFmpegError as err:
        raise StreamError(f"the keyframe does not decode: {type(err).__name__}") from err
    if not frames:
        raise StreamError("the keyframe decoded to no picture")
    frame = frames[0]
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width = frame.width
    encoder.height = frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.qscale = True
    # FF_QP2LAMBDA: libavcodec wants the quantiser scaled by 118.
    encoder.global_quality = quality * 118
    picture = frame.reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in [*encoder.encode(picture), *encoder.encode(None)])
