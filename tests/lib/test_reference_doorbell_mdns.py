"""The reference doorbell's mDNS advertisement, seen by a zeroconf browser on loopback.

Both sides bind 127.0.0.1 only, so nothing is multicast beyond this machine.
"""

from __future__ import annotations

from pathlib import Path

from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from reference_doorbell.doorbell import Doorbell, DoorbellConfig
from reference_doorbell.mdns import SERVICE_TYPE, choose_addresses

LOOPBACK = ["127.0.0.1"]


async def _lookup(zc: AsyncZeroconf, name: str) -> AsyncServiceInfo | None:
    info = AsyncServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}")
    return info if await info.async_request(zc.zeroconf, 3000) else None


async def test_advertisement_and_txt_update_after_factory_reset(tmp_path: Path) -> None:
    bell = Doorbell(
        DoorbellConfig(
            name="Front door",
            state_dir=tmp_path,
            host="127.0.0.1",
            port=0,
            advertise=True,
            mdns_interfaces=LOOPBACK,
        )
    )
    await bell.start()
    browser = AsyncZeroconf(interfaces=LOOPBACK)
    try:
        info = await _lookup(browser, "Front door")
        assert info is not None
        assert info.port == bell.port
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert info.decoded_properties == {
            "id": bell.device_id,
            "v": "1",
            "model": "Doorstep Reference Doorbell",
            "fw": bell.config.firmware,
            "fp": bell.fingerprint,
        }
        await bell.factory_reset()
        # Ask afresh: the cached record must have been replaced by the announcement.
        fresh = await _lookup(browser, "Front door")
        assert fresh is not None
        assert fresh.decoded_properties["fp"] == bell.fingerprint
    finally:
        await bell.stop()
        await browser.async_close()


def test_address_choice() -> None:
    assert choose_addresses(["10.0.0.5"], "0.0.0.0", None) == ["10.0.0.5"]
    assert choose_addresses([], "127.0.0.1", None) == ["127.0.0.1"]
    assert choose_addresses([], "0.0.0.0", ["192.168.7.2"]) == ["192.168.7.2"]
    assert choose_addresses([], "::", ["fd00::2"]) == ["fd00::2"]
