"""Area feeds inside Home Assistant: the poll timers, the feed state, repairs, counters.

The format, its checks and the matching live in ``sharing/feeds.py``. This module owns
what only Home Assistant has: the subscriptions in the sharing entry's options, the
home's location, a Store for each feed's ETag, sequence, pinned key and filed entries,
and the repair issue for a feed that keeps failing.

What leaves the house while polling is one identical GET per feed every 15 to 30
minutes; which entries matched, and that any did, stays here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
import hashlib
import logging
from pathlib import Path
import random
import ssl
from typing import Any

import aiohttp
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import (
    CONF_FEED_FINGERPRINT,
    CONF_FEED_PROXY,
    CONF_FEED_URL,
    CONF_FEEDS,
    CONF_KIND,
    CONF_LOCATION,
    DOMAIN,
    FEED_FAILURES_BEFORE_ISSUE,
    FEEDS_STORE_KEY,
    FEEDS_STORE_VERSION,
    ISSUE_FEED_FAILING,
    KIND_SHARING,
    STORAGE_DIR,
)
from .sharing import (
    TRUSTED_REQUESTERS_FILE,
    InvalidTrustFile,
    RequestState,
    SharingError,
    trusted_context,
)
from .sharing.area import Point
from .sharing.exceptions import FeedRejected
from .sharing.feed_fetch import FetchResult, feed_session, fetch_feed
from .sharing.feeds import Feed, entry_matches, plan_feed, poll_delay, verify_feed
from .sharing_hub import SharingConfigEntry, SharingHub

_LOGGER = logging.getLogger(__name__)

DATA_FEEDS: HassKey[FeedPoller] = HassKey(f"{DOMAIN}_feeds")


def subscription_id(url: str) -> str:
    """A short stable id for a feed URL (repair issue ids, diagnostics keys)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def subscriptions(options: dict[str, Any] | Any) -> dict[str, str]:
    """Subscribed feed URLs and the fingerprint each was subscribed with."""
    return {
        str(item[CONF_FEED_URL]): str(item[CONF_FEED_FINGERPRINT])
        for item in options.get(CONF_FEEDS, [])
    }


@dataclass
class FeedState:
    """What the hub remembers of one feed between polls (stored, never sent anywhere)."""

    pinned: str
    etag: str | None = None
    sequence: int | None = None
    requester_id: str | None = None
    # Entry id -> the request it was filed as.
    filed: dict[str, str] = field(default_factory=dict)
    failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pinned": self.pinned,
            "etag": self.etag,
            "sequence": self.sequence,
            "requester_id": self.requester_id,
            "filed": dict(self.filed),
            "failures": self.failures,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedState:
        return cls(
            pinned=str(data["pinned"]),
            etag=data.get("etag"),
            sequence=data.get("sequence"),
            requester_id=data.get("requester_id"),
            filed={str(k): str(v) for k, v in (data.get("filed") or {}).items()},
            failures=int(data.get("failures", 0)),
        )


@dataclass
class FeedCounters:
    """Diagnostics: how polling has gone this run. Counts only, no entry or agency names."""

    polls: int = 0
    not_modified: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    matched: int = 0
    dropped: int = 0
    withdrawn: int = 0


class FeedPoller:
    """Polls every subscribed feed of one sharing entry at random times."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SharingConfigEntry,
        hub: SharingHub,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._hass = hass
        self._entry = entry
        self._hub = hub
        self._rng = rng or random.SystemRandom()
        self._store: Store[dict[str, Any]] = Store(hass, FEEDS_STORE_VERSION, FEEDS_STORE_KEY)
        self._states: dict[str, FeedState] = {}
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None
        self.counters: dict[str, FeedCounters] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def async_start(self) -> None:
        raw = await self._store.async_load() or {}
        self._states = {url: FeedState.from_dict(data) for url, data in raw.items()}
        self._hass.data[DATA_FEEDS] = self
        self._entry.async_on_unload(self._stop)
        self._entry.async_on_unload(self._entry.add_update_listener(_options_updated))
        await self.async_sync()

    async def _stop(self) -> None:
        if self._hass.data.get(DATA_FEEDS) is self:
            self._hass.data.pop(DATA_FEEDS)
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._store.async_save(self._stored())

    def _stored(self) -> dict[str, Any]:
        return {url: state.to_dict() for url, state in self._states.items()}

    def _save(self) -> None:
        self._store.async_delay_save(self._stored, 0.5)

    async def async_sync(self) -> None:
        """Follow the options: new feeds start polling, removed ones are forgotten."""
        wanted = subscriptions(self._entry.options)
        for url in list(self._states):
            if url not in wanted:
                await self._unsubscribe(url)
        for url, fingerprint in wanted.items():
            just_subscribed = url not in self._states
            if just_subscribed:
                self._states[url] = FeedState(pinned=fingerprint)
            self.counters.setdefault(subscription_id(url), FeedCounters())
            if url not in self._timers:
                # A feed the household just subscribed to is read at once (the form
                # fetched it a moment ago anyway). After a restart the first poll waits
                # a random while, so every hub restarting after a release is no burst.
                delay = 1.0 if just_subscribed else self._rng.uniform(0, poll_delay(self._rng))
                self._schedule(url, delay)
        self._save()

    async def _unsubscribe(self, url: str) -> None:
        """Unsubscribing withdraws the agency's pending requests and revokes its asker."""
        state = self._states.pop(url)
        if (cancel := self._timers.pop(url, None)) is not None:
            cancel()
        for request_id in state.filed.values():
            try:
                await self._hub.gate.withdraw(request_id, "feed:unsubscribed")
            except SharingError:
                _LOGGER.exception("could not withdraw request %s on unsubscribing", request_id)
        if state.requester_id is not None:
            try:
                self._hub.gate.revoke_requester(state.requester_id)
            except SharingError:
                _LOGGER.debug("feed requester %s already gone", state.requester_id)
        ir.async_delete_issue(self._hass, DOMAIN, f"{ISSUE_FEED_FAILING}_{subscription_id(url)}")
        self.counters.pop(subscription_id(url), None)

    def _schedule(self, url: str, delay: float) -> None:
        async def _run(_now: datetime) -> None:
            self._timers.pop(url, None)
            try:
                await self.async_poll(url)
            finally:
                if url in self._states:
                    self._schedule(url, poll_delay(self._rng))

        self._timers[url] = async_call_later(
            self._hass, delay, HassJob(_run, f"doorstep feed poll {subscription_id(url)}")
        )

    # -- one poll ------------------------------------------------------------------------

    async def _fetch(self, url: str, etag: str | None) -> FetchResult:
        if self._ssl is None:
            trust = Path(self._hass.config.path(STORAGE_DIR, TRUSTED_REQUESTERS_FILE))
            try:
                self._ssl = await self._hass.async_add_executor_job(trusted_context, trust)
            except InvalidTrustFile as err:
                # Fetching with fewer CAs than the owner meant would fail less clearly.
                raise FeedRejected("unreachable", str(err)) from err
        if self._session is None:
            self._session = feed_session()
        proxy = self._entry.options.get(CONF_FEED_PROXY) or None
        return await fetch_feed(self._session, url, etag=etag, ssl_context=self._ssl, proxy=proxy)

    async def async_probe(self, url: str) -> bytes:
        """Fetch a feed once, unconditionally, for the subscription form."""
        result = await self._fetch(url, None)
        assert result.body is not None
        return result.body

    async def async_poll(self, url: str) -> None:
        """Fetch, verify and apply one feed; on any failure apply nothing."""
        state = self._states.get(url)
        if state is None:
            return
        counters = self.counters.setdefault(subscription_id(url), FeedCounters())
        counters.polls += 1
        try:
            # No ETag before a feed was ever applied: a 304 then would leave nothing.
            result = await self._fetch(url, state.etag if state.sequence is not None else None)
            if result.body is None:
                counters.not_modified += 1
                self._succeeded(url, state)
                return
            feed = verify_feed(
                result.body, state.pinned, now=dt_util.utcnow(), last_sequence=state.sequence
            )
        except FeedRejected as err:
            counters.rejected[err.reason] += 1
            self._failed(url, state, err)
            return
        await self._apply(url, state, feed, counters)
        state.etag = result.etag
        self._succeeded(url, state)

    def _homes(self) -> list[Point]:
        """Where the footage is: each doorbell's own place when its owner set one in its
        options, Home Assistant's location for the rest (and when there are none)."""
        config = self._hass.config
        here = Point(config.latitude, config.longitude)
        homes: list[Point] = []
        for entry in self._hass.config_entries.async_entries(DOMAIN):
            if entry.data.get(CONF_KIND) == KIND_SHARING:
                continue
            place = entry.options.get(CONF_LOCATION)
            point = Point(place["latitude"], place["longitude"]) if place else here
            if point not in homes:
                homes.append(point)
        return homes or [here]

    async def _apply(self, url: str, state: FeedState, feed: Feed, counters: FeedCounters) -> None:
        now = dt_util.utcnow()
        plan = plan_feed(feed, state.filed, now=now)
        gate = self._hub.gate
        for entry_id in [e for e, r in state.filed.items() if r in plan.withdrawn_request_ids]:
            request_id = state.filed.pop(entry_id)
            try:
                if gate.get(request_id).state is RequestState.PENDING:
                    counters.withdrawn += 1
                await gate.withdraw(request_id, "feed:withdrawn")
            except SharingError:
                _LOGGER.exception("could not withdraw request %s", request_id)
        if state.requester_id is None:
            requester, _token = gate.create_requester(feed.agency, feed.kind)
            state.requester_id = requester.id
        homes = self._homes()
        clips = self._hub.clips

        def has_footage(start: datetime, end: datetime) -> bool:
            return bool(clips.clips_in_window(start, end, None))

        dropped = plan.expired
        for entry in plan.new:
            matched = await self._hass.async_add_executor_job(
                entry_matches, entry, homes, has_footage
            )
            if not matched:
                dropped += 1
                continue
            try:
                request = await gate.file_request(state.requester_id, entry.request_fields())
            except SharingError as err:
                # Not recorded as filed, so the next version of the feed tries again.
                _LOGGER.warning("A matching feed entry could not be filed: %s", err)
                continue
            state.filed[entry.id] = request.id
            counters.matched += 1
        counters.dropped += dropped
        counters.accepted += 1
        state.pinned = feed.signer
        state.sequence = feed.sequence
        # A debug line is the only trace of what did not match, and it names nothing.
        _LOGGER.debug(
            "Feed %s (sequence %d): %d entries, %d not seen before, %d dropped",
            subscription_id(url),
            feed.sequence,
            len(feed.entries),
            len(plan.new),
            dropped,
        )

    def _succeeded(self, url: str, state: FeedState) -> None:
        state.failures = 0
        ir.async_delete_issue(self._hass, DOMAIN, f"{ISSUE_FEED_FAILING}_{subscription_id(url)}")
        self._save()

    def _failed(self, url: str, state: FeedState, err: FeedRejected) -> None:
        state.failures += 1
        _LOGGER.debug(
            "Feed %s refused (%s): %s; %d in a row",
            subscription_id(url),
            err.reason,
            err.detail,
            state.failures,
        )
        if state.failures >= FEED_FAILURES_BEFORE_ISSUE:
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                f"{ISSUE_FEED_FAILING}_{subscription_id(url)}",
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=f"feed_{err.reason}",
                translation_placeholders={"url": url, "failures": str(state.failures)},
            )
        self._save()

    def state_of(self, url: str) -> FeedState | None:
        return self._states.get(url)


async def _options_updated(hass: HomeAssistant, entry: SharingConfigEntry) -> None:
    poller = hass.data.get(DATA_FEEDS)
    if poller is not None:
        await poller.async_sync()


@callback
def feed_diagnostics(poller: FeedPoller | None) -> dict[str, Any]:
    """Counters per subscription, keyed by a hash of the URL."""
    if poller is None:
        return {}
    return {
        key: {
            "polls": c.polls,
            "not_modified": c.not_modified,
            "accepted": c.accepted,
            "rejected": dict(c.rejected),
            "matched": c.matched,
            "dropped": c.dropped,
            "withdrawn": c.withdrawn,
        }
        for key, c in poller.counters.items()
    }
