"""Build translations/en.json from strings.json, as Home Assistant's own build does for core.

Custom integrations are loaded from translations/*.json as they are, so the
``[%key:...%]`` references to Home Assistant's common strings must be resolved here.
Run: .venv/bin/python scripts/translations.py  (tests fail when en.json is stale).

The sharing card and the live card take their texts from the "common" section (keys
``card_*``), loaded with Home Assistant's ``frontend/get_translations``; --check also
compares the keys the cards' JavaScript asks for with the keys strings.json has, both
ways.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import sys
from typing import Any

import homeassistant

INTEGRATION = Path(__file__).resolve().parent.parent / "custom_components" / "doorstep"
REFERENCE = re.compile(r"\[%key:([a-z0-9_:]+)%\]")
CARDS = (
    INTEGRATION / "frontend" / "doorstep-sharing-card.js",
    INTEGRATION / "frontend" / "doorstep-live-card.js",
)
# A card asks for each of its texts as this._t("card_...") with the key spelled out.
CARD_KEY = re.compile(r'_t\(\s*"(card_[a-z0-9_]+)"')


def _lookup(tree: dict[str, Any], dotted: str) -> str:
    node: Any = tree
    for part in dotted.split("::"):
        node = node[part]
    if not isinstance(node, str):
        raise TypeError(f"{dotted} is not a string")
    return node


def resolve(node: Any, core: dict[str, Any], own: dict[str, Any]) -> Any:
    """Replace every reference with the text it names (our own keys or Home Assistant's)."""
    if isinstance(node, dict):
        return {key: resolve(value, core, own) for key, value in node.items()}
    if isinstance(node, str):

        def text_of(match: re.Match[str]) -> str:
            key = match.group(1)
            if key.startswith("component::doorstep::"):
                return str(
                    resolve(_lookup(own, key.removeprefix("component::doorstep::")), core, own)
                )
            return _lookup(core, key)

        return REFERENCE.sub(text_of, node)
    return node


def build() -> str:
    """The text en.json should have."""
    core = json.loads((Path(homeassistant.__file__).parent / "strings.json").read_text())
    own = json.loads((INTEGRATION / "strings.json").read_text())
    return json.dumps(resolve(own, core, own), indent=2, ensure_ascii=False) + "\n"


def card_key_problems() -> list[str]:
    """Keys the cards use that strings.json lacks, and card keys no card uses."""
    own = json.loads((INTEGRATION / "strings.json").read_text())
    have = {key for key in own.get("common", {}) if key.startswith("card_")}
    used = {key for card in CARDS for key in CARD_KEY.findall(card.read_text())}
    missing = [f"a card uses common.{key}, which strings.json lacks" for key in used - have]
    unused = [f"strings.json has common.{key}, which no card uses" for key in have - used]
    return sorted(missing) + sorted(unused)


def main() -> int:
    """Write en.json, or with --check report whether it is current."""
    target = INTEGRATION / "translations" / "en.json"
    text = build()
    if "--check" in sys.argv:
        problems = card_key_problems()
        if target.read_text() != text:
            problems.append(
                "translations/en.json is stale: run .venv/bin/python scripts/translations.py"
            )
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
