"""TXT record parsing: valid adverts round-trip, everything else is ignored quietly."""

from __future__ import annotations

from collections.abc import Iterable
import logging
from typing import Any

from hypothesis import HealthCheck, assume, given, settings, strategies as st
import pytest
from zeroconf import ServiceInfo

from custom_components.doorstep.device import (
    SERVICE_TYPE,
    DoorbellAdvert,
    is_valid_device_id,
    is_valid_fingerprint,
    normalize_fingerprint,
    parse_txt,
)

LOGGER_NAME = "custom_components.doorstep.device.discovery"
FP = "ab" * 32
VALID = {
    "id": "fd-3a9c21",
    "v": "1",
    "model": "Doorstep Reference Doorbell",
    "fw": "1.0.0",
    "fp": FP,
}
EXPECTED = DoorbellAdvert(
    device_id="fd-3a9c21",
    protocol_version=1,
    model="Doorstep Reference Doorbell",
    firmware="1.0.0",
    fingerprint=FP,
)
# caplog is function scoped; each example clears it, so sharing it is safe.
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)


def wire(entries: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """Encode key/value pairs as DNS TXT wire format."""
    out = bytearray()
    for key, value in entries:
        string = key if value is None else key + b"=" + value
        assert len(string) <= 255
        out.append(len(string))
        out += string
    return bytes(out)


def entries_of(props: dict[str, str]) -> list[tuple[bytes, bytes | None]]:
    return [(k.encode(), v.encode()) for k, v in props.items()]


def mixed(base: dict[str, str]) -> dict[str | bytes, str | bytes | None]:
    """A copy of ``base`` that may also take bytes keys and values."""
    copy: dict[str | bytes, str | bytes | None] = {}
    for key, value in base.items():
        copy[key] = value
    return copy


def assert_ignored(caplog: pytest.LogCaptureFixture, result: DoorbellAdvert | None) -> None:
    assert result is None
    assert any(r.name == LOGGER_NAME and r.levelno == logging.DEBUG for r in caplog.records), (
        "a rejected advertisement must be logged at debug level"
    )
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)


# --- strategies -----------------------------------------------------------------------

device_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,31}", fullmatch=True)
# U+FFFD is printable, but it is also how a decoder marks bad bytes, so it is refused.
models = st.text(
    st.characters(
        codec="utf-8", categories=["L", "N", "P", "S", "Zs"], exclude_characters="\ufffd"
    ).filter(str.isprintable),
    min_size=1,
    max_size=64,
).filter(lambda s: len(s.encode()) <= 64)
firmwares = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=32)
fingerprints = st.binary(min_size=32, max_size=32).map(bytes.hex)
unknown_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda k: k not in VALID
)
extras = st.dictionaries(unknown_keys, st.text(max_size=20), max_size=4)


@st.composite
def valid_props(draw: st.DrawFn) -> dict[str, str]:
    props = {
        "id": draw(device_ids),
        "v": draw(st.sampled_from(["1", "01", "001"])),
        "model": draw(models),
        "fw": draw(firmwares),
        "fp": draw(fingerprints),
    }
    extra = draw(extras)
    keys = list(props) + list(extra)
    order = draw(st.permutations(keys))
    merged = {**props, **extra}
    return {k: merged[k] for k in order}


def advert_of(props: dict[str, str]) -> DoorbellAdvert:
    return DoorbellAdvert(props["id"], int(props["v"]), props["model"], props["fw"], props["fp"])


# --- valid records --------------------------------------------------------------------


def test_valid_example() -> None:
    assert parse_txt(VALID) == EXPECTED
    assert parse_txt({k.encode(): v.encode() for k, v in VALID.items()}) == EXPECTED


@given(props=valid_props())
def test_valid_records_round_trip(props: dict[str, str]) -> None:
    expected = advert_of(props)
    assert parse_txt(props) == expected
    assert parse_txt({k.encode(): v.encode() for k, v in props.items()}) == expected
    raw = wire(entries_of(props))
    info = ServiceInfo(SERVICE_TYPE, f"Front door.{SERVICE_TYPE}", properties=raw)
    assert parse_txt(info.decoded_properties) == expected


def test_unknown_keys_and_valueless_unknown_keys_are_ignored() -> None:
    props = mixed(VALID)
    props.update({"future": "x", b"flag": None, b"later": b"\x00\x01"})
    assert parse_txt(props) == EXPECTED


def test_keys_are_case_sensitive() -> None:
    # "ID" is an unknown key, not a repeat of "id".
    assert parse_txt({**VALID, "ID": "other"}) == EXPECTED
    upper = {k.upper() if k == "fw" else k: v for k, v in VALID.items()}
    assert parse_txt(upper) is None


def test_empty_key_is_ignored() -> None:
    # RFC 6763 6.4: a string starting with "=" is silently ignored.
    assert parse_txt({"": "x", **VALID}) == EXPECTED


# --- invalid records ------------------------------------------------------------------

BAD_FIELDS: list[tuple[str, str | bytes | None]] = [
    ("id", ""),
    ("id", "-leading-dash"),
    ("id", "Upper"),
    ("id", "a" * 33),
    ("id", "fd_3a"),
    ("id", "fd\n"),
    ("id", "٣٤٥"),  # Arabic-Indic digits are digits, but not [0-9]
    ("v", "2"),
    ("v", "0"),
    ("v", ""),
    ("v", "1.0"),
    ("v", "0001"),
    ("v", " 1"),
    ("v", "١"),  # noqa: RUF001
    ("model", ""),
    ("model", "m" * 65),
    ("model", "é" * 33),  # 33 characters, 66 bytes
    ("model", "tab\there"),
    ("fw", ""),
    ("fw", "1" * 33),
    ("fw", "1.0-ß"),
    ("fw", "1.0\x7f"),
    ("fp", FP.upper()),
    ("fp", FP[:-1]),
    ("fp", FP + "0"),
    ("fp", "ab:" * 31 + "ab"),
    ("fp", "g" * 64),
    ("id", None),
    ("fp", None),
    ("model", "bad \ufffd utf-8"),
    ("model", b"\xff\xfe"),
    ("fw", b"1.0\xc3"),
]


@pytest.mark.parametrize(("key", "value"), BAD_FIELDS)
def test_bad_field_is_rejected(
    caplog: pytest.LogCaptureFixture, key: str, value: str | bytes | None
) -> None:
    props = mixed(VALID)
    props[key] = value
    assert_ignored(caplog, parse_txt(props))


@pytest.mark.parametrize("key", list(VALID))
def test_missing_key_is_rejected(caplog: pytest.LogCaptureFixture, key: str) -> None:
    props = {k: v for k, v in VALID.items() if k != key}
    assert_ignored(caplog, parse_txt(props))


@pytest.mark.parametrize("key", list(VALID))
def test_repeated_key_is_rejected(caplog: pytest.LogCaptureFixture, key: str) -> None:
    # Even a repeat with the same value: the rule is "exactly once".
    # A Mapping can only repeat a key by holding it as both str and bytes.
    props = mixed(VALID)
    props[key.encode()] = VALID[key]
    assert_ignored(caplog, parse_txt(props))


def test_record_over_512_bytes_is_rejected(caplog: pytest.LogCaptureFixture) -> None:
    padding = [(f"x{i}".encode(), b"p" * 100) for i in range(3)]
    small = {**VALID, **{k.decode(): v.decode() for k, v in padding}}
    assert len(wire(entries_of(small))) <= 512
    assert parse_txt(small) == EXPECTED
    big = {**small, "x9": "p" * 200}
    assert len(wire(entries_of(big))) > 512
    assert_ignored(caplog, parse_txt(big))


@pytest.mark.parametrize(
    "junk",
    [None, 42, "id=fd", ["id", "fd"], {1: 2}, {"id": 5}, {("id",): "x"}, {"id": ["a"]}, object()],
)
def test_wrong_types_never_raise(caplog: pytest.LogCaptureFixture, junk: Any) -> None:
    assert_ignored(caplog, parse_txt(junk))


def test_lone_surrogate_in_str_value_is_rejected(caplog: pytest.LogCaptureFixture) -> None:
    # What bytes.decode("utf-8", "surrogateescape") leaves behind.
    assert_ignored(caplog, parse_txt({**VALID, "model": "bad\udcff"}))


# --- fuzzing --------------------------------------------------------------------------

_MUTATIONS = ("drop", "repeat", "oversize", "non_utf8", "bad_version", "bad_fp", "pad")


@st.composite
def broken_entries(draw: st.DrawFn) -> list[tuple[bytes, bytes | None]]:
    """A valid record with one rule broken."""
    props = draw(valid_props())
    entries = entries_of(props)
    key = draw(st.sampled_from(list(VALID))).encode()
    index = next(i for i, (k, _) in enumerate(entries) if k == key)
    mutation = draw(st.sampled_from(_MUTATIONS))
    if mutation == "drop":
        del entries[index]
    elif mutation == "repeat":
        entries.insert(draw(st.integers(0, len(entries))), (key, entries[index][1]))
    elif mutation == "oversize":
        limits = {b"id": 32, b"v": 3, b"model": 64, b"fw": 32, b"fp": 64}
        entries[index] = (key, b"1" * draw(st.integers(limits[key] + 1, 200)))
    elif mutation == "non_utf8":
        value = entries[index][1] or b""
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80"]))
        cut = draw(st.integers(0, len(value)))
        entries[index] = (key, value[:cut] + bad + value[cut:])
    elif mutation == "bad_version":
        version = draw(st.integers(0, 999).filter(lambda n: n != 1))
        entries = [(k, str(version).encode() if k == b"v" else v) for k, v in entries]
    elif mutation == "bad_fp":
        entries = [(k, v.upper() if k == b"fp" and v else v) for k, v in entries]
        assume(any(k == b"fp" and v and v != v.lower() for k, v in entries))
    else:  # pad the record past 512 bytes with unknown keys
        entries += [(f"pad{i}".encode(), b"x" * 250) for i in range(3)]
    return entries


@FUZZ
@given(entries=broken_entries())
def test_broken_records_are_ignored(
    caplog: pytest.LogCaptureFixture, entries: list[tuple[bytes, bytes | None]]
) -> None:
    # The record as Home Assistant's ZeroconfServiceInfo.properties shows it: what
    # python-zeroconf decodes (errors="replace", first of repeated keys wins, "k=" is None).
    info = ServiceInfo(SERVICE_TYPE, f"Front door.{SERVICE_TYPE}", properties=wire(entries))
    repeated = len({k for k, _ in entries}) < len(entries)
    if not repeated:  # a dict cannot show a repeat
        caplog.clear()
        assert_ignored(caplog, parse_txt(info.decoded_properties))
        caplog.clear()
        assert_ignored(caplog, parse_txt(info.properties))


_keys = st.one_of(st.text(max_size=10), st.binary(max_size=10), st.sampled_from(list(VALID)))
_values = st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=80), st.integers())


@FUZZ
@given(props=st.dictionaries(_keys, _values, max_size=8))
def test_arbitrary_mappings_never_raise(
    caplog: pytest.LogCaptureFixture, props: dict[Any, Any]
) -> None:
    caplog.clear()
    if parse_txt(props) is None:
        assert any(r.name == LOGGER_NAME for r in caplog.records)


# --- helpers --------------------------------------------------------------------------


def test_fingerprint_helpers() -> None:
    spaced = ":".join(FP[i : i + 2] for i in range(0, 64, 2)).upper()
    assert not is_valid_fingerprint(spaced)
    assert normalize_fingerprint(spaced) == FP
    assert normalize_fingerprint(f"  {FP.upper()}\n") == FP
    assert is_valid_fingerprint(FP)
    assert not is_valid_fingerprint(FP + "\n")


@pytest.mark.parametrize(
    ("device_id", "valid"),
    [
        ("a", True),
        ("0", True),
        ("fd-3a9c21", True),
        ("a" * 32, True),
        ("a" * 33, False),
        ("-a", False),
        ("", False),
        ("A", False),
        ("a\n", False),
        ("a b", False),
    ],
)
def test_is_valid_device_id(device_id: str, valid: bool) -> None:
    assert is_valid_device_id(device_id) is valid
