"""One encoder per doorbell, fanned out to every ``/v1/stream.ts`` viewer.

The encoder runs only while at least one viewer is connected. Each viewer has a bounded
queue; a viewer that falls behind loses its backlog and resumes at the next keyframe,
so one slow phone never stalls the hub. All blocking work (capture, encode, JPEG)
happens on a single worker thread, which also keeps the source and the encoder from
ever being used by two threads at once. The microphone has a worker of its own: its
sound is muxed every 20 ms as it is captured, not once per video frame, so it neither
waits for the next frame nor reaches listeners in bursts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
import contextlib
import logging
import time
from typing import Any

from .audio import FRAME_SAMPLES, SAMPLE_RATE, AudioSource
from .blockcode import RGBFrame, encode_blockcode
from .encoding import Chunk, EncoderSettings, TsEncoder, encode_jpeg
from .sources import FrameSource

_LOGGER = logging.getLogger(__name__)

# Forced keyframes (for a new or recovering viewer) no closer together than this, so a
# flapping client cannot turn the stream into all-IDR.
_MIN_FORCED_KEYFRAME_GAP = 0.25
_FIRST_FRAME_TIMEOUT = 5.0


class StreamViewer:
    """One ``/v1/stream.ts`` response's view of the shared stream."""

    def __init__(self, max_chunks: int) -> None:
        self._max_chunks = max_chunks
        self._queue: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._awaiting_keyframe = True
        self._closed = False
        self.dropped = 0

    def push(self, chunk: Chunk) -> bool:
        """Queue a chunk; returns True when the viewer overflowed and needs a keyframe."""
        overflowed = False
        if not self._awaiting_keyframe and len(self._queue) >= self._max_chunks:
            # Behind by more than the queue holds: skip ahead rather than lag for ever.
            self.dropped += len(self._queue)
            self._queue.clear()
            self._awaiting_keyframe = True
            overflowed = True
        if self._awaiting_keyframe:
            if not chunk.keyframe:
                return overflowed
            self._awaiting_keyframe = False
        self._queue.append(chunk.data)
        self._wakeup.set()
        return overflowed

    def close(self) -> None:
        """End this viewer's stream (the doorbell stops or the encoder failed)."""
        self._closed = True
        self._wakeup.set()

    async def next(self) -> bytes | None:
        """Wait for stream bytes; returns everything queued, or None at the end."""
        while not self._queue:
            if self._closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        data = b"".join(self._queue)
        self._queue.clear()
        return data


class VideoPipeline:
    """Captures, stamps and encodes frames while anyone watches; makes snapshots."""

    def __init__(
        self,
        source: FrameSource,
        settings: EncoderSettings,
        blockcode: bool,
        encoder_factory: Callable[..., TsEncoder] = TsEncoder,
        microphone: AudioSource | None = None,
    ) -> None:
        self._source = source
        self._microphone = microphone
        self._audio_start = 0.0
        self._audio_sent = 0
        self._settings = settings
        self._blockcode = blockcode
        self._encoder_factory = encoder_factory
        self._executor: ThreadPoolExecutor | None = None
        self._sound_executor: ThreadPoolExecutor | None = None
        self._viewers: set[StreamViewer] = set()
        self._task: asyncio.Task[None] | None = None
        self._latest: RGBFrame | None = None
        self._frame_ready = asyncio.Event()
        self._keyframe_wanted = False
        self._last_keyframe = 0.0
        self._counter = 0
        # Three seconds of stream per viewer before it is skipped ahead: a chunk per video
        # frame, and with a microphone a chunk per 20 ms of sound as well.
        chunks_per_second = settings.fps + (SAMPLE_RATE // FRAME_SAMPLES if microphone else 0)
        self._max_chunks = max(8, chunks_per_second * 3)

    @property
    def microphone(self) -> AudioSource | None:
        """The microphone muxed into the stream (protocol v1.1), if the doorbell has one."""
        return self._microphone

    @property
    def viewer_count(self) -> int:
        """How many stream responses are open."""
        return len(self._viewers)

    @property
    def encoding(self) -> bool:
        """True while the encoder runs."""
        return self._task is not None and not self._task.done()

    def add_viewer(self) -> StreamViewer:
        """Join the stream; it starts at a keyframe, and the encoder starts if idle."""
        viewer = StreamViewer(self._max_chunks)
        self._viewers.add(viewer)
        self._keyframe_wanted = True
        if not self.encoding:
            self._task = asyncio.create_task(self._run(), name="doorbell-video-encoder")
        return viewer

    def remove_viewer(self, viewer: StreamViewer) -> None:
        """Leave the stream; the encoder stops after its current frame if nobody is left."""
        self._viewers.discard(viewer)
        viewer.close()

    async def snapshot(self) -> bytes:
        """Return a JPEG of the current picture."""
        frame = self._latest if self.encoding else None
        if frame is None and self.encoding:
            # The stream is starting; the source is busy, so wait for its first frame.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._frame_ready.wait(), _FIRST_FRAME_TIMEOUT)
            frame = self._latest
        if frame is None:
            frame = await self._call(self._grab_one)
        return await self._call(encode_jpeg, frame)

    def close_viewers(self) -> None:
        """End every open stream response (the encoder then stops by itself)."""
        for viewer in list(self._viewers):
            self.remove_viewer(viewer)

    async def stop(self) -> None:
        """End every viewer and the encoder, and release the worker thread."""
        self.close_viewers()
        if self._task is not None:
            # The loop notices that no viewer is left; cancelling would also work but
            # could cut a capture in the middle of a device read.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for name in ("_executor", "_sound_executor"):
            executor = getattr(self, name)
            if executor is not None:
                # Off the event loop: a snapshot may still be finishing on the worker.
                setattr(self, name, None)
                await asyncio.to_thread(executor.shutdown, wait=True)

    async def _call[T](self, func: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="doorbell-video")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def _stamp(self, frame: RGBFrame, counter: int) -> RGBFrame:
        if self._blockcode:
            encode_blockcode(frame, counter, time.time_ns() // 1000)
        return frame

    def _grab_one(self) -> RGBFrame:
        """Capture a single frame while no stream runs (worker thread)."""
        self._source.open()
        try:
            # A snapshot does not advance the counter: the counter counts streamed frames.
            return self._stamp(self._source.read(), self._counter)
        finally:
            self._source.close()

    def _capture_and_encode(
        self, encoder: TsEncoder, force_keyframe: bool
    ) -> tuple[RGBFrame, list[Chunk]]:
        """Worker thread: read, stamp and encode one frame."""
        frame = self._stamp(self._source.read(), self._counter)
        self._counter = (self._counter + 1) % 2**32
        return frame, encoder.encode(frame, force_keyframe)

    def _encode_sound(self, encoder: TsEncoder) -> list[Chunk]:
        """Sound worker: mux what the microphone captured since the last call."""
        pcm = self._due_sound()
        return encoder.encode_sound(pcm) if pcm is not None else []

    async def _sound_loop(self, encoder: TsEncoder, stop: asyncio.Event) -> None:
        """Every 20 ms, mux the sound captured meanwhile and hand it to the viewers."""
        loop = asyncio.get_running_loop()
        if self._sound_executor is None:
            self._sound_executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="doorbell-sound"
            )
        period = FRAME_SAMPLES / SAMPLE_RATE
        due = loop.time()
        try:
            while not stop.is_set():
                due += period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, due - loop.time()))
                if stop.is_set():
                    return
                chunks = await loop.run_in_executor(
                    self._sound_executor, self._encode_sound, encoder
                )
                self._fan_out(chunks)
                if loop.time() - due > period:
                    due = loop.time()  # fell behind: _due_sound catches up in one go
        except Exception:
            _LOGGER.exception("Sound pipeline failed; closing the stream's viewers")
            self.close_viewers()

    def _due_sound(self) -> Any:
        """Sound worker: the microphone's 20 ms frames captured since the last call."""
        if self._microphone is None:
            return None
        elapsed = time.monotonic() - self._audio_start
        due = int(elapsed * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES - self._audio_sent
        if due > SAMPLE_RATE:
            # The worker stalled for over a second: skip ahead rather than burst.
            self._audio_sent += due - SAMPLE_RATE
            self._microphone.read(due - SAMPLE_RATE)
            due = SAMPLE_RATE
        self._audio_sent += due
        return self._microphone.read(due) if due > 0 else None

    def _open_sources(self) -> None:
        self._source.open()
        if self._microphone is not None:
            self._microphone.open()
            self._audio_start = time.monotonic()
            self._audio_sent = 0

    def _close_sources(self) -> None:
        self._source.close()
        if self._microphone is not None:
            self._microphone.close()

    async def _run(self) -> None:
        # A viewer may join while a session winds down; it must not be left waiting.
        while self._viewers:
            await self._session()

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        encoder: TsEncoder | None = None
        sound: asyncio.Task[None] | None = None
        stop_sound = asyncio.Event()
        self._frame_ready.clear()
        try:
            await self._call(self._open_sources)
            encoder = await self._call(self._make_encoder)
            if self._microphone is not None:
                sound = asyncio.create_task(
                    self._sound_loop(encoder, stop_sound), name="doorbell-sound"
                )
            period = 1.0 / self._settings.fps
            due = loop.time()
            while self._viewers:
                force = self._take_keyframe_request()
                frame, chunks = await self._call(self._capture_and_encode, encoder, force)
                self._latest = frame
                self._frame_ready.set()
                self._fan_out(chunks)
                if self._source.live:
                    continue  # a camera's read already waited for the next frame
                due += period
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -period:
                    due = loop.time()  # fell behind: carry on, do not burst to catch up
        except Exception:
            _LOGGER.exception("Video pipeline failed; closing its viewers")
            self.close_viewers()
        finally:
            self._latest = None
            if sound is not None:
                # Let a mux in progress finish before the encoder and microphone close.
                stop_sound.set()
                with contextlib.suppress(Exception):
                    await sound
            if encoder is not None:
                await self._call(encoder.close)
            await self._call(self._close_sources)

    def _make_encoder(self) -> TsEncoder:
        if self._microphone is None:
            return self._encoder_factory(self._settings)
        return self._encoder_factory(self._settings, audio=True)

    def _take_keyframe_request(self) -> bool:
        if not self._keyframe_wanted:
            return False
        if time.monotonic() - self._last_keyframe < _MIN_FORCED_KEYFRAME_GAP:
            return False
        self._keyframe_wanted = False
        return True

    def _fan_out(self, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            if chunk.keyframe:
                self._last_keyframe = time.monotonic()
            for viewer in list(self._viewers):
                if viewer.push(chunk):
                    self._keyframe_wanted = True
