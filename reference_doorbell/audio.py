"""The doorbell's microphone and speaker (protocol v1.1, docs/protocol.md section 7).

Microphone sources hand out 16-bit mono PCM at 48 kHz in 20 ms frames, the unit the
Opus encoder in :mod:`.encoding` takes. They are blocking and, like the video sources,
are only called from the video worker thread, which muxes audio next to video.

The synthetic microphone plays a tone sequence that can be recognised and timed after
it has crossed the network, as the block code does for video: tone ``k`` has frequency
``TONE_FREQUENCIES[k % len]`` and starts ``k * TONE_PERIOD`` seconds after the stream
started (``onset(k)``).

The speaker side decodes the talk-back channel's Opus frames (PyAV's decoder) and plays
them on ALSA or writes them to a WAV file, which is what the tests read back.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
from pathlib import Path
import time
from typing import Any, Final, Protocol
import wave

import av
import numpy as np
import numpy.typing as npt

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE: Final = 48_000
FRAME_SAMPLES: Final = 960  # 20 ms, Opus's usual frame
TONE_FREQUENCIES: Final = (600.0, 900.0, 1200.0, 1500.0, 1800.0)
TONE_SECONDS: Final = 0.2
TONE_PERIOD: Final = 0.3
_TONE_AMPLITUDE: Final = 0.4 * 32767
# RFC 6716: no Opus packet is longer than 1275 bytes (one frame) ...
MAX_OPUS_PACKET: Final = 1275
# ... and none lasts longer than 120 ms.
MAX_OPUS_FRAME_SECONDS: Final = 0.12

type Pcm = npt.NDArray[np.int16]


class AudioSource(Protocol):
    """A blocking supplier of 48 kHz mono PCM."""

    def open(self) -> None:
        """Get ready to read; the stream's clock starts now."""

    def read(self, samples: int) -> Pcm:
        """Return exactly ``samples`` samples."""

    def close(self) -> None:
        """Release the file or device."""


class ToneSequence:
    """The synthetic microphone: tone, silence, next tone, in a fixed order."""

    def __init__(self) -> None:
        self._position = 0
        self.started_at = 0.0

    def open(self) -> None:
        """Start the sequence again from tone 0."""
        self._position = 0
        self.started_at = time.time()

    def close(self) -> None:
        """Nothing to release."""

    def read(self, samples: int) -> Pcm:
        """The next ``samples`` samples of the sequence."""
        pcm = tone_sequence_samples(self._position, samples)
        self._position += samples
        return pcm

    def onset(self, index: int) -> float:
        """Wall-clock time (Unix seconds) at which tone ``index`` was captured."""
        return self.started_at + index * TONE_PERIOD


def tone_sequence_samples(start: int, count: int) -> Pcm:
    """Samples ``start`` to ``start + count`` of the tone sequence."""
    n = np.arange(start, start + count, dtype=np.int64)
    period = round(TONE_PERIOD * SAMPLE_RATE)
    tone = round(TONE_SECONDS * SAMPLE_RATE)
    index = n // period
    freqs = np.asarray(TONE_FREQUENCIES)[index % len(TONE_FREQUENCIES)]
    offset = n % period
    # A short raised-cosine edge keeps the tones free of clicks that smear the spectrum.
    edge = round(0.005 * SAMPLE_RATE)
    envelope = np.clip(np.minimum(offset, tone - offset) / edge, 0.0, 1.0)
    wave_ = np.sin(2 * np.pi * freqs * n / SAMPLE_RATE) * envelope * (offset < tone)
    return (wave_ * _TONE_AMPLITUDE).astype(np.int16)


def tone_index_at(frequency: float) -> int | None:
    """Which tone of the sequence (0..4) has this frequency, within 60 Hz; None if none."""
    for i, f in enumerate(TONE_FREQUENCIES):
        if abs(frequency - f) < 60:
            return i
    return None


class _DecodedSource:
    """PCM from a PyAV input (a sound file looped, or an ALSA capture device)."""

    def __init__(self, url: str, *, format_: str | None, loop: bool) -> None:
        self._url = url
        self._format = format_
        self._loop = loop
        self._container: Any = None
        self._frames: Any = None
        self._buffer = np.zeros(0, dtype=np.int16)
        self._resampler: av.AudioResampler | None = None

    def open(self) -> None:
        self._container = av.open(self._url, format=self._format)
        self._frames = self._container.decode(audio=0)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = None
        self._buffer = np.zeros(0, dtype=np.int16)

    def read(self, samples: int) -> Pcm:
        while self._buffer.size < samples:
            self._buffer = np.concatenate([self._buffer, self._next_pcm()])
        pcm, self._buffer = self._buffer[:samples], self._buffer[samples:]
        return pcm

    def _next_pcm(self) -> Pcm:
        assert self._resampler is not None
        try:
            frame = next(self._frames)
        except StopIteration:
            if not self._loop:
                raise OSError(f"{self._url} ended") from None
            self.close()
            self.open()
            frame = next(self._frames)
        parts = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


class SoundFileSource(_DecodedSource):
    """A sound file (any format PyAV reads), looped."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), format_=None, loop=True)


class AlsaSource(_DecodedSource):
    """A real microphone through ALSA, e.g. ``default`` or ``plughw:1,0``."""

    def __init__(self, device: str) -> None:
        super().__init__(device, format_="alsa", loop=False)


# ----- the speaker


class SpeakerSink(Protocol):
    """Where decoded talk-back sound goes."""

    def write(self, pcm: Pcm) -> None:
        """Play (or store) 48 kHz mono PCM."""

    def close(self) -> None:
        """Finish the current talk."""


class WavFileSink:
    """Keeps everything the speaker played and writes it as one WAV file after each talk."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._parts: list[Pcm] = []
        self.samples_written = 0
        # (first sample's index, wall-clock time it reached the speaker) per write, so a
        # benchmark can tell when each sound was played.
        self.write_times: list[tuple[int, float]] = []

    @property
    def path(self) -> Path:
        """The WAV file."""
        return self._path

    def write(self, pcm: Pcm) -> None:
        """Keep the samples."""
        self.write_times.append((self.samples_written, time.time()))
        self._parts.append(pcm)
        self.samples_written += pcm.size

    def close(self) -> None:
        """A talk ended: write every talk so far (readers never see half a header)."""
        pcm = np.concatenate(self._parts) if self._parts else np.zeros(0, np.int16)
        partial = self._path.with_suffix(".part")
        with wave.open(str(partial), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(pcm.astype("<i2").tobytes())
        partial.replace(self._path)


def read_wav(path: Path) -> Pcm:
    """All samples of a 16-bit mono WAV file."""
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


class AlsaSink:
    """A real speaker through PyAV's ALSA output."""

    def __init__(self, device: str) -> None:
        self._device = device
        self._container: Any = None
        self._stream: Any = None
        self._pts = 0

    def write(self, pcm: Pcm) -> None:
        """Play the samples."""
        if self._container is None:
            self._container = av.open(self._device, "w", format="alsa")
            self._stream = self._container.add_stream("pcm_s16le", rate=SAMPLE_RATE)
            self._stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += pcm.size
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Release the device between talks."""
        if self._container is not None:
            self._container.close()
        self._container = self._stream = None
        self._pts = 0


class BadOpusFrame(Exception):
    """A talk-back frame that is not a playable Opus packet."""


class OpusPlayer:
    """Decodes one talk's Opus packets and hands the PCM to the speaker."""

    def __init__(self, sink: SpeakerSink, on_pcm: Callable[[Pcm], None] | None = None) -> None:
        self._sink = sink
        self._on_pcm = on_pcm
        context = av.CodecContext.create("libopus", "r")
        assert isinstance(context, av.AudioCodecContext)
        context.sample_rate = SAMPLE_RATE
        context.layout = "mono"
        self._decoder = context
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self.frames = 0
        self.last_duration = 0.0

    def play(self, payload: bytes) -> None:
        """Decode one packet and play it; raises :class:`BadOpusFrame` for garbage."""
        if not payload or len(payload) > MAX_OPUS_PACKET:
            raise BadOpusFrame(f"an Opus packet is 1 to {MAX_OPUS_PACKET} bytes")
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except (av.error.InvalidDataError, ValueError) as err:
            raise BadOpusFrame(f"not an Opus packet: {err}") from None
        duration = 0.0
        for frame in frames:
            duration += frame.samples / frame.sample_rate
            if frame.samples > MAX_OPUS_FRAME_SECONDS * frame.sample_rate:
                raise BadOpusFrame("an Opus packet lasts at most 120 ms")
            for out in self._resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1).astype(np.int16)
                self._sink.write(pcm)
                if self._on_pcm is not None:
                    self._on_pcm(pcm)
        self.last_duration = duration
        self.frames += 1

    def close(self) -> None:
        """The talk ended."""
        self._sink.close()


def encode_opus(pcm: Pcm) -> list[bytes]:
    """48 kHz mono PCM as 20 ms Opus packets (what a hub sends on the talk-back channel)."""
    context = av.CodecContext.create("libopus", "w")
    assert isinstance(context, av.AudioCodecContext)
    context.sample_rate = SAMPLE_RATE
    context.layout = "mono"
    context.format = "s16"
    context.bit_rate = 32_000
    packets: list[bytes] = []
    whole = pcm.size - pcm.size % FRAME_SAMPLES
    for start in range(0, whole, FRAME_SAMPLES):
        frame = av.AudioFrame.from_ndarray(
            pcm[start : start + FRAME_SAMPLES].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        packets += [bytes(p) for p in context.encode(frame)]
    packets += [bytes(p) for p in context.encode(None)]
    return packets


def dominant_frequency(pcm: Pcm) -> float:
    """The strongest frequency in a stretch of PCM (Hann window, real FFT)."""
    window = np.hanning(pcm.size)
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * window))
    return float(np.argmax(spectrum) * SAMPLE_RATE / pcm.size)
