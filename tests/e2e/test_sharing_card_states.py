"""The sharing card's confirmation in the states a lab login cannot reach, in Chromium.

The full end-to-end test (test_sharing_card.py) drives a real hub with a real owner,
whose session is interactive, with a password and no TOTP. The other answers the hub
can give (a long-lived session, a login without a password, a TOTP user, a stale
preview, a rate limit) are drawn here by the real card module, in a page of its own,
talking to a stand-in for Home Assistant's frontend connection that answers as the
contract says and records what the card sent. The card's texts come from the real
translations/en.json. No network at all: the page is set as content, not loaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from typing import Any

from playwright.async_api import Browser, Locator, Page, async_playwright
import pytest

from scripts.lab.hass import REPO

from .conftest import CHROMIUM, require_tool

pytestmark = pytest.mark.e2e

CARD = REPO / "custom_components" / "doorstep" / "frontend" / "doorstep-sharing-card.js"
TRANSLATIONS = REPO / "custom_components" / "doorstep" / "translations" / "en.json"
WAIT_MS = 20_000

# The stand-in: Home Assistant's root element, a hass object whose localize reads the
# integration's translations (with the one ICU form the card's texts use, plurals), and
# callWS answering from window.__answers. Every message the card sends is kept.
PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<script>
customElements.define("home-assistant", class extends HTMLElement {});
const resources = {};
(function flatten(prefix, node) {
  for (const [key, value] of Object.entries(node)) {
    if (typeof value === "object") flatten(`${prefix}${key}.`, value);
    else resources[`${prefix}${key}`] = value;
  }
})("component.doorstep.", __TRANSLATIONS__);
function format(template, values) {
  const plural = /\\{(\\w+), plural, one \\{([^}]*)\\} other \\{([^}]*)\\}\\}/g;
  return template
    .replace(plural, (_m, name, one, other) =>
      (Number(values[name]) === 1 ? one : other).replace("#", values[name]))
    .replace(/\\{(\\w+)\\}/g, (match, name) => (name in values ? String(values[name]) : match));
}
window.__sent = [];
const now = Date.now();
const at = (minutes) => new Date(now + minutes * 60000).toISOString();
const request = {
  id: "01REQUEST", requester: { name: "Station North", kind: "police" },
  reference: "CASE-1", reason: "Parcel", contact: "desk@example.org",
  window: { start: at(-10), end: at(0) }, wanted_by: at(600), filed_at: at(-1),
  delivery: "pickup", state: "pending", outcome: null, closed_at: null,
  history: [{ at: at(-1), event: "filed", detail: null }],
  clips: [{ id: "c1", doorbell_id: "d", start: at(-5), duration_s: 10, size_bytes: 2048 }],
  switch_entity_id: null, decline_entity_id: null,
};
const preview = {
  request_id: "01REQUEST", confirm: "digest-1", clip_count: 1, total_duration_s: 10,
  total_bytes: 2048, has_audio: true,
  destination: { method: "upload", host: "evidence.example.org" },
  expires_at: at(600),
  clips: [{ id: "c1", doorbell: "d", start: at(-5), duration_s: 10, size_bytes: 2048,
            has_audio: true, thumbnail_url: "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
            video_url: "data:video/mp4;base64," }],
};
window.hass = {
  language: "en", locale: { language: "en", time_zone: "local" }, config: { time_zone: "UTC" },
  user: { is_admin: true },
  localize: (key, values = {}) => (resources[key] ? format(resources[key], values) : ""),
  loadBackendTranslation: async () => window.hass.localize,
  connection: {
    subscribeMessage: (callback) => {
      setTimeout(() => callback({ available: true, requests: [request], closed: [] }), 0);
      return Promise.resolve(() => {});
    },
  },
  callWS: async (message) => {
    window.__sent.push(message);
    const kind = message.type.replace("doorstep/sharing/", "");
    const answers = window.__answers[kind];
    const answer = Array.isArray(answers) ? answers.shift() : answers;
    if (answer === undefined && kind === "preview") return preview;
    if (answer && answer.error) throw answer.error;
    return answer ?? {};
  },
};
</script>
<script>__CARD__</script>
<script>
window.__start = () => {
  const card = document.createElement("doorstep-sharing-card");
  card.setConfig({});
  document.body.append(card);
  card.hass = window.hass;
};
</script>
</body></html>"""


def _refusal(key: str) -> dict[str, Any]:
    """An error as Home Assistant's websocket sends a translated one."""
    return {
        "error": {
            "code": "unauthorized",
            "message": "(the hub's English)",
            "translation_key": key,
            "translation_domain": "doorstep",
            "translation_placeholders": None,
        }
    }


def _text(section: str, key: str) -> str:
    translations = json.loads(TRANSLATIONS.read_text(encoding="utf-8"))
    node = translations[section][key]
    return str(node["message"] if isinstance(node, dict) else node)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_tool(str(CHROMIUM), "chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _card_with(browser: Browser, answers: dict[str, Any]) -> tuple[Page, Locator]:
    """A page with the card, whose hub answers ``answers`` (a list answers in turn)."""
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    html = PAGE.replace("__TRANSLATIONS__", TRANSLATIONS.read_text(encoding="utf-8")).replace(
        "__CARD__", CARD.read_text(encoding="utf-8")
    )
    await page.set_content(html)
    await page.evaluate("(answers) => { window.__answers = answers; }", answers)
    await page.wait_for_function("() => customElements.get('doorstep-sharing-card')")
    await page.evaluate("() => window.__start()")
    card = page.locator("doorstep-sharing-card")
    await card.locator(".request .share-toggle").wait_for(timeout=WAIT_MS)
    return page, card


async def _open(card: Locator) -> Locator:
    await card.locator(".share-toggle").click()
    dialog = card.locator("dialog")
    await dialog.locator(".leaving").wait_for(timeout=WAIT_MS)
    return dialog


async def _sent(page: Page, kind: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = await page.evaluate("() => window.__sent")
    return [message for message in sent if message["type"] == f"doorstep/sharing/{kind}"]


STEP_UP = {
    "interactive": True,
    "password": True,
    "totp": False,
    "mfa_unsupported": False,
    "is_admin": True,
}


async def test_a_long_lived_session_is_told_approval_needs_a_person(browser: Browser) -> None:
    page, card = await _card_with(browser, {"step_up": {**STEP_UP, "interactive": False}})
    dialog = await _open(card)
    notice = dialog.locator(".notice.needs-person")
    assert await notice.inner_text() == _text("common", "card_step_up_needs_person")
    assert await dialog.locator("input").count() == 0
    assert await dialog.locator(".approve").count() == 0
    # What would leave is still shown, upload host and sound included.
    assert "evidence.example.org" in await dialog.locator(".destination").inner_text()
    assert await dialog.locator(".has-audio").inner_text() == _text("common", "card_audio_yes")
    assert await _sent(page, "approve") == []


async def test_a_login_without_a_password_is_told_to_set_one(browser: Browser) -> None:
    page, card = await _card_with(browser, {"step_up": {**STEP_UP, "password": False}})
    dialog = await _open(card)
    notice = await dialog.locator(".notice.needs-password").inner_text()
    assert notice == _text("common", "card_step_up_needs_password")
    assert "Profile → Security" in notice
    assert await dialog.locator(".approve").count() == 0
    assert await _sent(page, "approve") == []


async def test_a_notify_mfa_user_is_told_to_add_an_authenticator_app(browser: Browser) -> None:
    """Two-factor login by notify codes, which the card cannot check: no password field,
    no approve button, and the notice names the kind of code it does check."""
    page, card = await _card_with(browser, {"step_up": {**STEP_UP, "mfa_unsupported": True}})
    dialog = await _open(card)
    notice = await dialog.locator(".notice.mfa-unsupported").inner_text()
    assert notice == _text("common", "card_step_up_mfa_unsupported")
    assert "authenticator app (TOTP)" in notice
    assert await dialog.locator("input").count() == 0
    assert await dialog.locator(".approve").count() == 0
    assert await _sent(page, "approve") == []


async def test_a_totp_user_gives_password_and_code(browser: Browser) -> None:
    page, card = await _card_with(
        browser, {"step_up": {**STEP_UP, "totp": True}, "approve": {"id": "01REQUEST"}}
    )
    dialog = await _open(card)
    await dialog.locator("input[name=password]").fill("secret")
    await dialog.locator("input[name=code]").fill("123456")
    await dialog.locator("input[name=code]").press("Enter")
    await dialog.wait_for(state="hidden", timeout=WAIT_MS)
    assert await _sent(page, "approve") == [
        {
            "type": "doorstep/sharing/approve",
            "request_id": "01REQUEST",
            "confirm": "digest-1",
            "password": "secret",
            "code": "123456",
        }
    ]


async def test_a_code_asked_for_brings_the_code_field(browser: Browser) -> None:
    _page, card = await _card_with(
        browser, {"step_up": STEP_UP, "approve": [_refusal("step_up_code_required")]}
    )
    dialog = await _open(card)
    assert await dialog.locator("input[name=code]").count() == 0
    await dialog.locator("input[name=password]").fill("secret")
    await dialog.locator(".approve").click()
    error = dialog.locator(".error[role=alert]")
    await error.filter(has_text="authenticator").wait_for(timeout=WAIT_MS)
    assert await error.inner_text() == _text("exceptions", "step_up_code_required")
    assert await dialog.locator("input[name=code]").count() == 1
    assert await dialog.locator("input[name=password]").input_value() == "secret"


async def test_a_stale_preview_is_fetched_again_and_said(browser: Browser) -> None:
    page, card = await _card_with(
        browser, {"step_up": STEP_UP, "approve": [_refusal("preview_stale")]}
    )
    dialog = await _open(card)
    await dialog.locator("input[name=password]").fill("secret")
    await dialog.locator("input[name=password]").press("Enter")
    error = dialog.locator(".error[role=alert]")
    await error.filter(has_text="changed").wait_for(timeout=WAIT_MS)
    assert await error.inner_text() == _text("exceptions", "preview_stale")
    assert len(await _sent(page, "preview")) == 2
    assert await dialog.is_visible()


async def test_a_rate_limit_is_said_in_the_persons_words(browser: Browser) -> None:
    _page, card = await _card_with(
        browser, {"step_up": STEP_UP, "approve": [_refusal("step_up_rate_limited")]}
    )
    dialog = await _open(card)
    await dialog.locator("input[name=password]").fill("secret")
    await dialog.locator("input[name=password]").press("Enter")
    error = dialog.locator(".error[role=alert]")
    await error.filter(has_text="Too many").wait_for(timeout=WAIT_MS)
    assert await error.inner_text() == _text("exceptions", "step_up_rate_limited")


async def test_decline_is_one_click_with_no_confirmation(browser: Browser) -> None:
    page, card = await _card_with(browser, {"decline": {"id": "01REQUEST", "state": "declined"}})
    await card.locator(".decline").click()
    live = card.locator("[role=status]")
    await live.filter(has_text="Declined the request from Station North").wait_for(timeout=WAIT_MS)
    assert await card.locator("dialog").is_hidden()
    assert await _sent(page, "decline") == [
        {"type": "doorstep/sharing/decline", "request_id": "01REQUEST"}
    ]
    assert await _sent(page, "preview") == []
