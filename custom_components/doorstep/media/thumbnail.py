"""What a clip looks like and holds, for the sharing preview: a still and an audio flag.

Blocking (PyAV opens and decodes the file): call from a worker thread.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
from av.error import FFmpegError
from PIL import Image

from .exceptions import MediaError

# Wide enough to recognise a person at the door in the card, small enough to send quickly.
THUMBNAIL_WIDTH = 320
JPEG_QUALITY = 80


class ThumbnailError(MediaError):
    """The clip has no decodable keyframe (or could not be read)."""


def clip_has_audio(path: Path) -> bool:
    """Whether the clip carries a sound track (only when the owner turned on audio)."""
    try:
        with av.open(str(path)) as container:
            return len(container.streams.audio) > 0
    except (FFmpegError, OSError) as err:
        raise ThumbnailError(f"cannot read {path.name}") from err


def keyframe_jpeg(path: Path, width: int = THUMBNAIL_WIDTH) -> bytes:
    """The clip's first keyframe as a JPEG, scaled to ``width`` (keeping its shape)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ThumbnailError(f"{path.name} has no video")
            stream = container.streams.video[0]
            # Decoding only keyframes skips straight to the first picture a viewer sees.
            stream.codec_context.skip_frame = "NONKEY"
            for frame in container.decode(stream):
                height = max(2, round(frame.height * width / max(frame.width, 1)))
                rgb = frame.to_ndarray(width=width, height=height, format="rgb24")
                image = Image.frombytes("RGB", (width, height), rgb.tobytes())
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
                return buffer.getvalue()
    except (FFmpegError, OSError) as err:
        raise ThumbnailError(f"cannot decode {path.name}") from err
    raise ThumbnailError(f"{path.name} has no keyframe")
