"""Open a stream once, as :class:`StreamSource` would, and say what is wrong with it.

The config flow asks this before it adds a camera: one connection, the first keyframe,
then closed. Each way it can fail has its own exception, so the owner reads why.
Messages never carry the URL, which may carry credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
import errno
import time
from typing import Any, Final

import av

from .exceptions import (
    NotAStream,
    NoVideo,
    StreamError,
    StreamNotFound,
    StreamRefused,
    StreamUnreachable,
)
from .source import _RTSP_DEFAULT_OPTIONS

# Packets read while waiting for the first keyframe; a camera sends one every few
# seconds, so a stream without one this far in will not play.
_MAX_PACKETS_TO_KEYFRAME: Final = 600


@dataclass(frozen=True, slots=True)
class StreamProbe:
    """What the first connection showed."""

    codec: str
    width: int
    height: int
    # FFmpeg's name for the H.264 profile ("Constrained Baseline", "High", ...).
    profile: str | None


async def probe_stream(
    url: str, *, options: Mapping[str, str] | None = None, within: float = 10.0
) -> StreamProbe:
    """Connect to ``url`` once and read up to its first keyframe.

    Raises StreamRefused (credentials), StreamNotFound (path), StreamUnreachable,
    NotAStream, NoVideo (no H.264 video), or StreamError for anything else.
    """
    merged = dict(_RTSP_DEFAULT_OPTIONS) if url.startswith("rtsp") else {}
    merged.update(options or {})
    return await asyncio.to_thread(_probe, url, merged, within)


def _probe(url: str, options: dict[str, str], within: float) -> StreamProbe:
    started = time.monotonic()
    try:
        container = av.open(url, "r", options=options, timeout=(within, within))
    except av.error.HTTPUnauthorizedError as err:
        raise StreamRefused("the server refused the credentials") from err
    except av.error.HTTPForbiddenError as err:
        raise StreamRefused("the server forbids this stream") from err
    except av.error.HTTPNotFoundError as err:
        raise StreamNotFound("the server has no stream at this path") from err
    except av.error.InvalidDataError as err:
        # FFmpeg says the same when the server stays silent until the timeout.
        if time.monotonic() - started >= within:
            raise StreamUnreachable("the server did not answer in time") from err
        raise NotAStream("the server does not speak the stream's protocol") from err
    except (av.error.FFmpegError, OSError) as err:
        if isinstance(err, OSError) and err.errno in _UNREACHABLE:
            raise StreamUnreachable(f"cannot connect: {errno.errorcode[err.errno]}") from err
        raise StreamError(f"cannot open the stream: {type(err).__name__}") from err
    try:
        return _first_keyframe(container)
    except av.error.FFmpegError as err:
        raise StreamError(f"reading the stream failed: {type(err).__name__}") from err
    finally:
        container.close()


_UNREACHABLE: Final = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    }
)


def _first_keyframe(container: Any) -> StreamProbe:
    video = next((stream for stream in container.streams if stream.type == "video"), None)
    if video is None:
        raise NoVideo("the stream has no video")
    context = video.codec_context
    if context.name != "h264":
        raise NoVideo(f"the video is {context.name}, not H.264")
    for count, packet in enumerate(container.demux(video)):
        if packet.is_keyframe and packet.size:
            return StreamProbe(
                codec=context.name,
                width=int(context.width or 0),
                height=int(context.height or 0),
                profile=context.profile,
            )
        if count >= _MAX_PACKETS_TO_KEYFRAME:
            break
    raise NoVideo("the stream sent no keyframe")
