"""What the sharing preview reads from a clip on disk: its first picture and whether it
carries sound, for clips written with and without a sound track, and for broken files."""

from __future__ import annotations

from fractions import Fraction
import io
from pathlib import Path

import av
import numpy as np
import pytest

from custom_components.doorstep.media.thumbnail import (
    THUMBNAIL_WIDTH,
    ThumbnailError,
    clip_has_audio,
    keyframe_jpeg,
)


def _write_clip(path: Path, *, with_sound: bool) -> Path:
    """One second of 640x360 H.264 at 10 fps, with an Opus tone when asked."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        audio = container.add_stream("libopus", rate=48000) if with_sound else None
        for index in range(10):
            picture = np.full((360, 640, 3), index * 20, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, 10)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            samples = 960
            for index in range(50):
                t = (np.arange(samples) + index * samples) / 48000
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                sound = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
                sound.sample_rate = 48000
                sound.pts = index * samples
                container.mux(audio.encode(sound))
            container.mux(audio.encode())
    return path


def test_a_clip_with_sound_says_so(tmp_path: Path) -> None:
    assert clip_has_audio(_write_clip(tmp_path / "sound.mp4", with_sound=True)) is True


def test_a_clip_without_sound_says_so(tmp_path: Path) -> None:
    assert clip_has_audio(_write_clip(tmp_path / "silent.mp4", with_sound=False)) is False


def test_the_thumbnail_is_a_scaled_jpeg_of_the_first_picture(tmp_path: Path) -> None:
    jpeg = keyframe_jpeg(_write_clip(tmp_path / "clip.mp4", with_sound=True))
    assert jpeg[:3] == b"\xff\xd8\xff"
    with av.open(io.BytesIO(jpeg)) as image:
        picture = next(image.decode(video=0))
    assert (picture.width, picture.height) == (THUMBNAIL_WIDTH, 180)


@pytest.mark.parametrize("content", [b"", b"not a video at all", b"\x00\x00\x00\x18ftypmp42"])
def test_a_broken_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(ThumbnailError):
        keyframe_jpeg(path)
    with pytest.raises(ThumbnailError):
        clip_has_audio(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ThumbnailError):
        clip_has_audio(tmp_path / "gone.mp4")
