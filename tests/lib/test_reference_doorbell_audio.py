"""Protocol v1.1 on the reference doorbell: the microphone in the stream, the talk-back
channel to its speaker, the one-talker floor, and what bad talk-back input gets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import io
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from reference_doorbell.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    TONE_FREQUENCIES,
    TONE_PERIOD,
    dominant_frequency,
    encode_opus,
    read_wav,
    tone_index_at,
    tone_sequence_samples,
)
from reference_doorbell.doorbell import Doorbell

from .test_reference_doorbell import make_config, pair, pinned, url


@pytest.fixture
async def audio_bell(tmp_path: Path) -> AsyncIterator[Doorbell]:
    doorbell = Doorbell(
        make_config(
            tmp_path / "state",
            microphone="tone",
            speaker_file=tmp_path / "speaker.wav",
            width=160,
            height=96,
        )
    )
    await doorbell.start()
    yield doorbell
    await doorbell.stop()


@pytest.fixture
async def v10_bell(tmp_path: Path) -> AsyncIterator[Doorbell]:
    doorbell = Doorbell(make_config(tmp_path / "state10", width=160, height=96))
    await doorbell.start()
    yield doorbell
    await doorbell.stop()


async def _read_stream(
    bell: Doorbell, session: aiohttp.ClientSession, token: str, seconds: float
) -> bytes:
    data = bytearray()
    async with session.get(
        url(bell, "/v1/stream.ts"),
        headers={"Authorization": f"Bearer {token}"},
        ssl=pinned(bell),
    ) as response:
        assert response.status == 200
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            data += await response.content.readany()
    return bytes(data)


def _decoded_audio(ts: bytes) -> tuple[str, np.ndarray[Any, np.dtype[np.int16]]]:
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        audio = [s for s in container.streams if s.type == "audio"]
        assert audio, "the stream has no audio"
        codec = audio[0].codec_context.name
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        parts = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(audio[0])
            for out in resampler.resample(frame)
        ]
    return codec, np.concatenate(parts).astype(np.int16)


def _tone_runs(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> list[int]:
    """The tone indices heard, 20 ms window by window, with repeats and silence folded."""
    heard: list[int] = []
    for start in range(0, pcm.size - FRAME_SAMPLES, FRAME_SAMPLES):
        window = pcm[start : start + FRAME_SAMPLES]
        if np.sqrt(np.mean(window.astype(np.float64) ** 2)) < 2000:
            continue  # the gap between tones
        index = tone_index_at(dominant_frequency(window))
        if index is not None and (not heard or heard[-1] != index):
            heard.append(index)
    return heard


async def test_info_and_txt_announce_sound(audio_bell: Doorbell, v10_bell: Doorbell) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(url(audio_bell, "/v1/info"), ssl=False) as response:
            info = await response.json()
        async with session.get(url(v10_bell, "/v1/info"), ssl=False) as response:
            info10 = await response.json()
    assert info["v"] == 1
    assert info["minor"] == 1
    assert info["audio"] == {"microphone": "opus", "speaker": True}
    assert audio_bell.txt_record()["audio"] == "mic,spk"
    # A doorbell without sound answers exactly as protocol v1.0 did.
    assert set(info10) == {"id", "name", "model", "fw", "v"}
    assert "audio" not in v10_bell.txt_record()


async def test_microphone_is_opus_in_the_stream_with_the_tone_sequence_in_order(
    audio_bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(audio_bell, session)
    ts = await _read_stream(audio_bell, session, token, 2.5)
    codec, pcm = _decoded_audio(ts)
    assert codec in {"opus", "libopus"}
    heard = _tone_runs(pcm)
    assert len(heard) >= 5, heard
    # Each tone is followed by the next one of the sequence, never another.
    for a, b in itertools.pairwise(heard):
        assert b == (a + 1) % len(TONE_FREQUENCIES), heard


async def test_v10_stream_has_video_only(
    v10_bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(v10_bell, session)
    ts = await _read_stream(v10_bell, session, token, 0.6)
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        assert [s.type for s in container.streams] == ["video"]


def test_tone_sequence_is_what_it_says() -> None:
    period = round(TONE_PERIOD * SAMPLE_RATE)
    for k in range(len(TONE_FREQUENCIES) + 1):
        tone = tone_sequence_samples(k * period + 960, 4800)
        assert tone_index_at(dominant_frequency(tone)) == k % len(TONE_FREQUENCIES)


async def _talk(
    bell: Doorbell, session: aiohttp.ClientSession, token: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(
        url(bell, "/v1/talk"), headers={"Authorization": f"Bearer {token}"}, ssl=pinned(bell)
    )
    assert (await ws.receive_json())["type"] == "talking"
    return ws


def _chirp(seconds: float) -> np.ndarray[Any, np.dtype[np.int16]]:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    sweep = np.sin(2 * np.pi * (300 * t + 900 * t * t / seconds))
    return (sweep * 12000).astype(np.int16)


async def _wait_until_idle(bell: Doorbell) -> None:
    assert bell.talk is not None
    for _ in range(100):
        if not bell.talk.talking:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the talk did not end")


async def test_talk_back_reaches_the_speaker_recognisably(
    audio_bell: Doorbell, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    token = await pair(audio_bell, session)
    sent = _chirp(1.0)
    ws = await _talk(audio_bell, session, token)
    for packet in encode_opus(sent):
        await ws.send_bytes(packet)
        await asyncio.sleep(0.005)
    await ws.close()
    await _wait_until_idle(audio_bell)
    played = read_wav(tmp_path / "speaker.wav").astype(np.float64)
    assert played.size >= sent.size * 0.9
    # Normalised cross-correlation: Opus adds a few ms of delay and loses no shape.
    reference = sent.astype(np.float64)
    corr = np.correlate(played, reference, mode="valid") if played.size >= reference.size else None
    if corr is None:
        corr = np.correlate(reference, played, mode="valid")
    peak = float(np.max(np.abs(corr)))
    score = peak / (np.linalg.norm(reference) * np.linalg.norm(played) + 1e-9)
    assert score > 0.8, score


async def test_one_talker_at_a_time(audio_bell: Doorbell, session: aiohttp.ClientSession) -> None:
    first = await pair(audio_bell, session, "Hub A")
    second = await pair(audio_bell, session, "Hub B")
    ws = await _talk(audio_bell, session, first)
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await session.ws_connect(
            url(audio_bell, "/v1/talk"),
            headers={"Authorization": f"Bearer {second}"},
            ssl=pinned(audio_bell),
        )
    assert err.value.status == 409
    async with session.get(
        url(audio_bell, "/v1/talk"),
        headers={"Authorization": f"Bearer {second}"},
        ssl=pinned(audio_bell),
    ) as response:
        assert response.status == 409
        assert (await response.json())["error"] == "busy"
    await ws.close()
    await _wait_until_idle(audio_bell)
    again = await _talk(audio_bell, session, second)
    await again.close()


async def test_talk_needs_a_token_and_a_speaker(
    v10_bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    async with session.get(url(v10_bell, "/v1/talk"), ssl=pinned(v10_bell)) as response:
        assert response.status == 401
    token = await pair(v10_bell, session)
    async with session.get(
        url(v10_bell, "/v1/talk"),
        headers={"Authorization": f"Bearer {token}"},
        ssl=pinned(v10_bell),
    ) as response:
        assert response.status == 404
        assert (await response.json())["error"] == "no_speaker"


async def test_malformed_frames_get_an_error_and_the_talk_goes_on(
    audio_bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(audio_bell, session)
    ws = await _talk(audio_bell, session, token)
    # TOC code 3 with a frame count of zero: not a valid Opus packet (RFC 6716 3.2.5).
    await ws.send_bytes(b"\x03\x00")
    answer = await ws.receive_json()
    assert answer["type"] == "error"
    assert answer["error"] == "bad_frame"
    good = encode_opus(_chirp(0.2))
    for packet in good:
        await ws.send_bytes(packet)
    await ws.close()
    await _wait_until_idle(audio_bell)
    assert audio_bell.talk is not None
    assert audio_bell.talk.sink.samples_written >= 0.15 * SAMPLE_RATE  # type: ignore[attr-defined]


async def test_oversized_frame_ends_the_talk_with_a_clear_error(
    audio_bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(audio_bell, session)
    ws = await _talk(audio_bell, session, token)
    await ws.send_bytes(b"\xfc" + bytes(4000))
    answer = await ws.receive_json()
    assert answer["error"] == "frame_too_large"
    closing = await ws.receive()
    assert closing.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
    assert ws.close_code == 1009
    await _wait_until_idle(audio_bell)
    # The doorbell is fine: the floor is free again.
    again = await _talk(audio_bell, session, token)
    await again.close()


async def test_flood_faster_than_real_time_is_refused(
    audio_bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(audio_bell, session)
    ws = await _talk(audio_bell, session, token)
    for packet in encode_opus(_chirp(4.0)):
        if ws.closed:
            break
        await ws.send_bytes(packet)
    answers = []
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            answers.append(message.json())
    assert {"type": "error", "error": "too_fast"}.items() <= answers[-1].items()
    assert ws.close_code == 1008
