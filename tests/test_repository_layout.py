"""The repository is one HACS and Marketplace (HA 2026.11) can install, and it claims
only the Home Assistant release it is tested on.

What Home Assistant 2026.11's Marketplace reads (homeassistant/components/marketplace,
repositories/base.py and utils/validate.py, read from the 2026.11.0 wheel): hacs.json in
the repository root, where a key of the wrong type is dropped with a warning; the first
directory under custom_components/ as the integration; and that directory's
manifest.json, which must name a domain of [a-z0-9_-] and may give name, codeowners and
config_flow. The `homeassistant` key is the minimum version it installs on.
"""

from __future__ import annotations

import json
from pathlib import Path
import re

from awesomeversion import AwesomeVersion

ROOT = Path(__file__).resolve().parents[1]

# hacs.json keys the Marketplace reads, and the type each must have.
MARKETPLACE_KEYS: dict[str, type] = {
    "content_in_root": bool,
    "filename": str,
    "hacs": str,
    "hide_default_branch": bool,
    "homeassistant": str,
    "name": str,
    "persistent_directory": str,
    "zip_release": bool,
}
# Read by HACS, ignored by the Marketplace.
HACS_ONLY_KEYS = {"render_readme"}


def _pinned_home_assistant() -> str:
    text = (ROOT / "requirements_test.txt").read_text()
    match = re.search(r"^homeassistant==(\S+)$", text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_hacs_json_is_what_the_marketplace_reads() -> None:
    manifest = json.loads((ROOT / "hacs.json").read_text())
    for key, value in manifest.items():
        assert key in MARKETPLACE_KEYS or key in HACS_ONLY_KEYS, key
        if key in MARKETPLACE_KEYS:
            assert isinstance(value, MARKETPLACE_KEYS[key]), key
    assert manifest["name"] == "Doorstep"
    assert AwesomeVersion(manifest["homeassistant"]).valid


def test_claimed_minimum_is_the_tested_release() -> None:
    """hacs.json names the release the test venv runs, and the README says the same."""
    pinned = _pinned_home_assistant()
    assert json.loads((ROOT / "hacs.json").read_text())["homeassistant"] == pinned
    assert f"Home Assistant {pinned} or newer" in (ROOT / "README.md").read_text()


def test_one_integration_with_a_manifest_the_marketplace_accepts() -> None:
    folders = sorted(
        p.name for p in (ROOT / "custom_components").iterdir() if p.is_dir() and p.name[0] != "_"
    )
    assert folders == ["doorstep"]
    manifest = json.loads((ROOT / "custom_components" / "doorstep" / "manifest.json").read_text())
    assert re.fullmatch(r"[a-z0-9_-]+", manifest["domain"])
    assert manifest["domain"] == "doorstep"
    assert isinstance(manifest["name"], str)
    assert isinstance(manifest["codeowners"], list)
    assert all(isinstance(owner, str) for owner in manifest["codeowners"])
    assert manifest["config_flow"] is True


def test_manifest_requirements_install_with_home_assistants_constraints() -> None:
    """Every requirement is pinned, and none fights a pin in HA's package_constraints.txt
    (the av 13.1.0 against aiortc 1.16.0 conflict of HA 2025.4 was one such fight)."""
    manifest = json.loads((ROOT / "custom_components" / "doorstep" / "manifest.json").read_text())
    import homeassistant

    constraints_file = Path(homeassistant.__file__).parent / "package_constraints.txt"
    constraints = {}
    for line in constraints_file.read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()):
            constraints[match.group(1).lower()] = match.group(2)
    for requirement in manifest["requirements"]:
        name, _, version = requirement.partition("==")
        assert version, f"{requirement} is not pinned"
        if name.lower() in constraints:
            assert constraints[name.lower()] == version, requirement
