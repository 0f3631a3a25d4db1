"""Every step of the config flow, against a real reference doorbell."""

from __future__ import annotations

from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.doorstep.const import (
    CONF_ALLOW_REMOTE_LIVE_VIEW,
    CONF_CODE,
    CONF_DEVICE_ID,
    CONF_FINGERPRINT,
    CONF_HOME_NETWORKS,
    CONF_LOCATION,
    CONF_POST_ROLL,
    CONF_PRE_ROLL,
    CONF_RECORD_AUDIO,
    CONF_RECORD_CLIPS,
    CONF_RECORD_CONTINUOUS,
    CONF_RING_COOLDOWN,
    CONF_SEGMENT_LENGTH,
    CONF_TOKEN,
    DEFAULT_SEGMENT_LENGTH,
    DOMAIN,
)
from custom_components.doorstep.repairs import identity_issue_id
from reference_doorbell.doorbell import Doorbell

from .conftest import zeroconf_info


def _wrong_code(bell: Doorbell) -> str:
    """A well-formed code that is certainly not the doorbell's."""
    zeros = "0" * len(bell.pairing_code)
    return zeros if bell.pairing_code != zeros else "1" * len(bell.pairing_code)


async def test_zeroconf_discovery_confirm_and_pair(hass: HomeAssistant, doorbell: Doorbell) -> None:
    """Discovered → confirmed → paired with the code: an entry with a pinned certificate."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"name": "Front door", "host": "127.0.0.1"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pair"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CODE: doorbell.pairing_code}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Front door"
    data = result["data"]
    assert data[CONF_HOST] == "127.0.0.1"
    assert data[CONF_PORT] == doorbell.port
    assert data[CONF_DEVICE_ID] == doorbell.device_id
    assert data[CONF_FINGERPRINT] == doorbell.fingerprint
    assert data[CONF_TOKEN]
    assert result["result"].unique_id == doorbell.device_id


async def test_zeroconf_during_onboarding_skips_confirm(
    hass: HomeAssistant, doorbell: Doorbell
) -> None:
    """While Home Assistant is being onboarded the flow goes straight to the code."""
    with patch(
        "custom_components.doorstep.config_flow.onboarding.async_is_onboarded",
        return_value=False,
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell)
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pair"


@pytest.mark.parametrize(
    "txt",
    [
        {"id": "Not A Valid Id!"},
        {"fp": "abc"},
        {"v": "99"},
        {"model": "x" * 65},
        {"fw": ""},
    ],
)
async def test_zeroconf_malformed_record_is_ignored(
    hass: HomeAssistant, doorbell: Doorbell, txt: dict[str, str]
) -> None:
    """A broken advertisement aborts quietly and creates nothing."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell, **txt)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_doorstep_device"
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_zeroconf_certificate_not_as_advertised(
    hass: HomeAssistant, doorbell: Doorbell
) -> None:
    """The device at the address is not the one advertised: the code is never sent."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=zeroconf_info(doorbell, fp="0" * 64),
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    code = doorbell.pairing_code
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_CODE: code})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "wrong_device"}
    # The doorbell never saw the code, so it is still valid.
    assert doorbell.pairing_code == code


async def test_rediscovery_with_same_certificate_follows_new_address(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """A known doorbell that moved is followed, because it proves the pinned identity."""
    info = zeroconf_info(doorbell)
    moved = info.__class__(
        ip_address=info.ip_address,
        ip_addresses=info.ip_addresses,
        hostname=info.hostname,
        name=info.name,
        port=doorbell.port + 1,
        type=info.type,
        properties=info.properties,
    )
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_ZEROCONF}, data=moved
        )
        # Flows schedule the entry's (re)load; let it run while setup is still patched.
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert paired_entry.data[CONF_PORT] == doorbell.port + 1


async def test_rediscovery_with_other_certificate_changes_nothing(
    hass: HomeAssistant,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Same id, different certificate: a repair issue, and the entry is left alone."""
    before = dict(paired_entry.data)
    info = zeroconf_info(doorbell, fp="a" * 64)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "identity_changed"
    assert dict(paired_entry.data) == before
    issue = issue_registry.async_get_issue(DOMAIN, identity_issue_id(doorbell.device_id))
    assert issue is not None
    assert issue.translation_key == "identity_changed"
    assert issue.severity is ir.IssueSeverity.ERROR


async def _choose_doorstep_by_address(
    hass: HomeAssistant, menu: ConfigFlowResult
) -> ConfigFlowResult:
    """Pick "Doorstep doorbell, by its address" in the add-a-device menu."""
    return await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "manual"}
    )


async def test_manual_setup(hass: HomeAssistant, doorbell: Doorbell) -> None:
    """Host and port by hand; the certificate is pinned on first use."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    result = await _choose_doorstep_by_address(hass, result)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: " 127.0.0.1 ", CONF_PORT: doorbell.port}
    )
    assert result["step_id"] == "pair"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CODE: doorbell.pairing_code}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_FINGERPRINT] == doorbell.fingerprint
    assert result["data"][CONF_HOST] == "127.0.0.1"


async def test_manual_setup_cannot_connect_then_recovers(
    hass: HomeAssistant, doorbell: Doorbell, unused_tcp_port: int
) -> None:
    """Nothing listening: the form comes back with cannot_connect and the input kept."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _choose_doorstep_by_address(hass, result)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: unused_tcp_port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: doorbell.port}
    )
    assert result["step_id"] == "pair"


async def test_manual_setup_already_configured(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """The same doorbell by hand again is refused."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _choose_doorstep_by_address(hass, result)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: doorbell.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_wrong_code_then_right_code(hass: HomeAssistant, doorbell: Doorbell) -> None:
    """A wrong code says how many tries are left; the right one still works after it."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell)
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CODE: _wrong_code(doorbell)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_CODE: "invalid_code"}
    assert result["description_placeholders"]["attempts_left"] == "4"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CODE: doorbell.pairing_code}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("code", ["", "12", "abcdef", "123456789", "12 34 5x"])
async def test_malformed_code(hass: HomeAssistant, doorbell: Doorbell, code: str) -> None:
    """A code that cannot be a code is refused without spending one of the doorbell's tries."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell)
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_CODE: code})
    assert result["errors"] == {CONF_CODE: "invalid_code"}
    # Still five tries left on the device.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CODE: _wrong_code(doorbell)}
    )
    assert result["description_placeholders"]["attempts_left"] == "4"


async def test_code_with_spaces_is_accepted(hass: HomeAssistant, doorbell: Doorbell) -> None:
    """People copy codes as the doorbell groups them."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell)
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    code = doorbell.pairing_code
    spaced = f" {code[:3]} {code[3:]} "
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_CODE: spaced})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_too_many_attempts(hass: HomeAssistant, doorbell: Doorbell) -> None:
    """Five wrong codes lock the doorbell; the flow says for how long, even for the right code."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell)
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    for _ in range(5):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_CODE: _wrong_code(doorbell)}
        )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CODE: doorbell.pairing_code}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "too_many_attempts"}
    assert 0 < int(result["description_placeholders"]["retry_after"]) <= 60


async def test_pair_cannot_connect(hass: HomeAssistant, doorbell: Doorbell) -> None:
    """The doorbell went away between discovery and the code."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(doorbell)
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    code = doorbell.pairing_code
    await doorbell.stop()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_CODE: code})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_reauth_after_token_revoked(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """The doorbell forgot the hub; a fresh code gives a fresh token."""
    old_token = paired_entry.data[CONF_TOKEN]
    doorbell.revoke_all_tokens()
    result = await paired_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CODE: _wrong_code(doorbell)}
    )
    assert result["errors"] == {CONF_CODE: "invalid_code"}
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_CODE: doorbell.pairing_code}
        )
        # Flows schedule the entry's (re)load; let it run while setup is still patched.
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert paired_entry.data[CONF_TOKEN] != old_token
    assert paired_entry.data[CONF_FINGERPRINT] == doorbell.fingerprint


async def test_reauth_after_factory_reset_pins_new_certificate(
    hass: HomeAssistant,
    doorbell: Doorbell,
    paired_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A reset doorbell has a new certificate; its code proves it, so the new one is pinned."""
    old_fp = doorbell.fingerprint
    await doorbell.factory_reset()
    assert doorbell.fingerprint != old_fp
    result = await paired_entry.start_reauth_flow(hass)
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_CODE: doorbell.pairing_code}
        )
        # Flows schedule the entry's (re)load; let it run while setup is still patched.
        await hass.async_block_till_done()
    assert result["reason"] == "reauth_successful"
    assert paired_entry.data[CONF_FINGERPRINT] == doorbell.fingerprint
    assert issue_registry.async_get_issue(DOMAIN, identity_issue_id(doorbell.device_id)) is None


async def test_reauth_cannot_connect(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """Reauth with the doorbell offline says so."""
    result = await paired_entry.start_reauth_flow(hass)
    code = doorbell.pairing_code
    await doorbell.stop()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_CODE: code})
    assert result["errors"] == {"base": "cannot_connect"}


async def test_reconfigure_new_port(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """Same doorbell, same certificate, new address: updated without a code."""
    # The entry points somewhere stale; reconfigure points it back at the doorbell.
    hass.config_entries.async_update_entry(paired_entry, data={**paired_entry.data, CONF_PORT: 1})
    result = await paired_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: doorbell.port}
        )
        # Flows schedule the entry's (re)load; let it run while setup is still patched.
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert paired_entry.data[CONF_PORT] == doorbell.port


async def test_reconfigure_after_reset_asks_for_code(
    hass: HomeAssistant, doorbell: Doorbell, paired_entry: MockConfigEntry
) -> None:
    """A new certificate is only pinned with the doorbell's code."""
    await doorbell.factory_reset()
    result = await paired_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: doorbell.port}
    )
    assert result["step_id"] == "pair"
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_CODE: doorbell.pairing_code}
        )
        # Flows schedule the entry's (re)load; let it run while setup is still patched.
        await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert paired_entry.data[CONF_FINGERPRINT] == doorbell.fingerprint


async def test_reconfigure_to_another_doorbell_is_refused(
    hass: HomeAssistant, doorbell: Doorbell
) -> None:
    """An entry cannot be pointed at a different device."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Back door",
        unique_id="some-other-bell",
        data={
            CONF_HOST: "127.0.0.1",
            CONF_PORT: 1,
            CONF_DEVICE_ID: "some-other-bell",
            CONF_FINGERPRINT: "b" * 64,
            CONF_TOKEN: "x",
        },
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: doorbell.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"


async def test_reconfigure_cannot_connect(
    hass: HomeAssistant, paired_entry: MockConfigEntry, unused_tcp_port: int
) -> None:
    """An address where nothing answers is refused with the form kept."""
    result = await paired_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: unused_tcp_port}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_options(hass: HomeAssistant, paired_entry: MockConfigEntry) -> None:
    """Cooldown and live-view settings are stored; a bad network is refused with the input kept."""
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.options.async_init(paired_entry.entry_id)
        assert result["step_id"] == "init"
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_RING_COOLDOWN: 10,
                CONF_ALLOW_REMOTE_LIVE_VIEW: False,
                CONF_HOME_NETWORKS: "100.64.0.0/10, not-a-network",
                CONF_RECORD_CLIPS: True,
                CONF_PRE_ROLL: 5,
                CONF_POST_ROLL: 15,
            },
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_HOME_NETWORKS: "invalid_network"}
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_RING_COOLDOWN: 10,
                CONF_ALLOW_REMOTE_LIVE_VIEW: False,
                CONF_HOME_NETWORKS: "100.64.0.0/10\n 2001:db8::/32 ",
                CONF_RECORD_CLIPS: True,
                CONF_PRE_ROLL: 5,
                CONF_POST_ROLL: 15,
            },
        )
        # Flows schedule the entry's (re)load; let it run while setup is still patched.
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert paired_entry.options == {
        CONF_RING_COOLDOWN: 10,
        CONF_ALLOW_REMOTE_LIVE_VIEW: False,
        CONF_HOME_NETWORKS: ["100.64.0.0/10", "2001:db8::/32"],
        CONF_RECORD_CLIPS: True,
        CONF_PRE_ROLL: 5,
        CONF_POST_ROLL: 15,
        # Not in the form's input: continuous recording stays off by default.
        CONF_RECORD_CONTINUOUS: False,
        CONF_SEGMENT_LENGTH: DEFAULT_SEGMENT_LENGTH,
        # Nor does recording sound.
        CONF_RECORD_AUDIO: False,
    }


async def test_options_place_a_doorbell_elsewhere(
    hass: HomeAssistant, paired_entry: MockConfigEntry
) -> None:
    """A doorbell can be placed away from Home Assistant's home (area feeds match
    against it); a place off the globe is refused with a clear error, and leaving the
    field empty keeps Home Assistant's location."""
    base = {
        CONF_RING_COOLDOWN: 10,
        CONF_ALLOW_REMOTE_LIVE_VIEW: False,
        CONF_RECORD_CLIPS: True,
        CONF_PRE_ROLL: 5,
        CONF_POST_ROLL: 15,
    }
    with patch("custom_components.doorstep.async_setup_entry", return_value=True):
        result = await hass.config_entries.options.async_init(paired_entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**base, CONF_LOCATION: {"latitude": 95, "longitude": 7.44}}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_LOCATION: "invalid_location"}
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**base, CONF_LOCATION: {"latitude": 46.95, "longitude": 7.44}}
        )
        await hass.async_block_till_done()
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert paired_entry.options[CONF_LOCATION] == {"latitude": 46.95, "longitude": 7.44}

        result = await hass.config_entries.options.async_init(paired_entry.entry_id)
        result = await hass.config_entries.options.async_configure(result["flow_id"], base)
        await hass.async_block_till_done()
    assert CONF_LOCATION not in paired_entry.options
