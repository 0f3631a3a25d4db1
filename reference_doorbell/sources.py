"""Where video frames come from: a synthetic camera, a looped file, or a V4L2 camera.

Every source hands out RGB frames (``HxWx3`` uint8 numpy arrays) of the configured
size. Sources are blocking and are only ever called from the video worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
import logging
from pathlib import Path
import time
from typing import Any, Protocol

import av
import numpy as np

from .blockcode import RGBFrame, code_height
from .font import text_mask

_LOGGER = logging.getLogger(__name__)


class FrameSource(Protocol):
    """A blocking supplier of RGB frames."""

    @property
    def live(self) -> bool:
        """True when ``read`` paces itself (a real camera); false when it returns at once."""

    def open(self) -> None:
        """Get ready to read (open a file or device)."""

    def read(self) -> RGBFrame:
        """Return the next frame."""

    def close(self) -> None:
        """Release the file or device."""


class SyntheticCamera:
    """Draws a moving, colourful scene with the doorbell's name and a clock.

    The drawing is a handful of numpy slice operations per frame so that it costs far
    less than the H.264 encoder that follows it.
    """

    def __init__(self, name: str, width: int, height: int) -> None:
        self._name = name
        self._width = width
        self._height = height
        self._background = _rainbow(width, height)
        self._ball = _disc(max(8, height // 6))
        self._start = time.monotonic()

    @property
    def live(self) -> bool:
        """A synthetic frame is ready at once; the caller paces the frame rate."""
        return False

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def read(self) -> RGBFrame:
        """Draw the scene as it looks now."""
        width, height = self._width, self._height
        t = time.monotonic() - self._start
        frame = np.empty((height, width, 3), dtype=np.uint8)
        # The rainbow scrolls sideways: a slice of a twice-as-wide picture.
        offset = int(t * 40) % width
        np.copyto(frame, self._background[:, offset : offset + width])

        top = code_height(width) + 4
        self._draw_ball(frame, t, top)
        self._draw_label(frame, self._name, y=top + (height - top) // 3, scale=None)
        clock = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 10) % 10}"
        self._draw_label(frame, clock, y=height - 40, scale=3)
        return frame

    def _draw_ball(self, frame: RGBFrame, t: float, top: int) -> None:
        size = self._ball.shape[0]
        x = _bounce(t * 120, self._width - size)
        y = top + _bounce(t * 80, self._height - top - size)
        hue = (t * 0.1) % 1.0
        colour = (_hue_rgb(np.array([hue]))[0] * 255).astype(np.uint8)
        region = frame[y : y + size, x : x + size]
        region[self._ball] = colour

    def _draw_label(self, frame: RGBFrame, text: str, y: int, scale: int | None) -> None:
        if scale is None:
            # As large as fits the width, at most 4 pixels per font pixel.
            scale = max(1, min(4, (self._width - 40) // max(1, len(text) * 6)))
        mask = text_mask(text, scale)
        mh, mw = mask.shape
        mw = min(mw, self._width - 16)
        x = max(8, (self._width - mw) // 2)
        y = max(0, min(y, self._height - mh - 8))
        pad = 2 * scale
        box = frame[max(0, y - pad) : y + mh + pad, max(0, x - pad) : x + mw + pad]
        box //= 3
        frame[y : y + mh, x : x + mw][mask[:, :mw]] = 255


def _bounce(position: float, span: int) -> int:
    """A triangle wave between 0 and ``span``."""
    if span <= 0:
        return 0
    phase = int(position) % (2 * span)
    return phase if phase < span else 2 * span - phase


def _hue_rgb(hue: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Fully saturated RGB (0..1) for hues in 0..1."""
    h6 = hue[:, np.newaxis] * 6.0
    rgb = np.stack(
        [
            np.abs(h6[:, 0] - 3.0) - 1.0,
            2.0 - np.abs(h6[:, 0] - 2.0),
            2.0 - np.abs(h6[:, 0] - 4.0),
        ],
        axis=1,
    )
    return np.clip(rgb, 0.0, 1.0)


def _rainbow(width: int, height: int) -> RGBFrame:
    """A pastel rainbow twice the frame width, darker towards the bottom."""
    hues = np.arange(2 * width, dtype=np.float64) / width % 1.0
    row = 0.35 + 0.45 * _hue_rgb(hues)
    shade = np.linspace(1.0, 0.6, height)[:, np.newaxis, np.newaxis]
    return (row[np.newaxis, :, :] * shade * 255).astype(np.uint8)


def _disc(diameter: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    r = diameter / 2
    yy, xx = np.mgrid[0:diameter, 0:diameter]
    inside: np.ndarray[Any, np.dtype[np.bool_]] = (yy - r + 0.5) ** 2 + (xx - r + 0.5) ** 2 <= r * r
    return inside


class _DecodingSource:
    """Shared code for sources that PyAV decodes."""

    def __init__(self, width: int, height: int) -> None:
        self._width = width
        self._height = height
        self._container: Any = None
        self._frames: Iterator[Any] | None = None

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None

    def _convert(self, frame: Any) -> RGBFrame:
        # Scaling and colour conversion in one swscale pass.
        rgb: RGBFrame = frame.to_ndarray(width=self._width, height=self._height, format="rgb24")
        return rgb


class FileSource(_DecodingSource):
    """Plays a video file in a loop, decoded and rescaled to the configured size.

    The file is always decoded and re-encoded by the doorbell's own encoder, which is
    what guarantees the stream's profile, keyframe interval and in-band headers whatever
    the file contains. Frames are played at the doorbell's frame rate.
    """

    def __init__(self, path: Path, width: int, height: int) -> None:
        super().__init__(width, height)
        self._path = path

    @property
    def live(self) -> bool:
        """Decoding a file returns at once; the caller paces it."""
        return False

    def open(self) -> None:
        self._container = av.open(str(self._path))
        if not self._container.streams.video:
            self.close()
            raise ValueError(f"{self._path} has no video stream")
        self._frames = self._container.decode(video=0)

    def read(self) -> RGBFrame:
        if self._frames is None:
            self.open()
        assert self._frames is not None
        frames: Iterator[Any] = self._frames
        for _attempt in range(2):
            try:
                return self._convert(next(frames))
            except StopIteration:
                # End of file: start again from the top.
                self._container.seek(0)
                frames = self._container.decode(video=0)
                self._frames = frames
        raise ValueError(f"{self._path} has no decodable video frames")


class V4L2Source(_DecodingSource):
    """A Video4Linux2 camera, such as a Raspberry Pi camera or a USB webcam."""

    def __init__(self, device: str, width: int, height: int, fps: int) -> None:
        if not self.available():
            # Fail at start, not when the first viewer connects.
            raise RuntimeError(
                "This PyAV build has no v4l2 input (the PyPI wheels lack it). Install PyAV "
                "built against the system FFmpeg: pip install --no-binary av av"
            )
        super().__init__(width, height)
        self._device = device
        self._fps = fps

    @staticmethod
    def available() -> bool:
        """Whether the installed PyAV can read Video4Linux2 devices."""
        return "v4l2" in av.formats_available

    @property
    def live(self) -> bool:
        """A camera delivers frames at its own pace."""
        return True

    def open(self) -> None:
        wanted = {"video_size": f"{self._width}x{self._height}", "framerate": str(self._fps)}
        try:
            self._container = av.open(self._device, format="v4l2", options=wanted)
        except av.FFmpegError as err:
            # Some cameras offer no mode of exactly this size or rate: take their default
            # and let swscale rescale.
            _LOGGER.warning("%s refused %s (%s); using its default mode", self._device, wanted, err)
            self._container = av.open(self._device, format="v4l2")
        self._frames = self._container.decode(video=0)

    def read(self) -> RGBFrame:
        if self._frames is None:
            self.open()
        assert self._frames is not None
        return self._convert(next(self._frames))
