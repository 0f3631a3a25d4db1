"""Browse recorded clips in Home Assistant's media browser, for watching at home.

Clips are served to logged-in Home Assistant users on the home network only (the same
rule as live view, invariant I3). Giving footage to anyone outside goes through the
sharing gate and nowhere else.
"""

from __future__ import annotations

from datetime import date
from http import HTTPStatus

from aiohttp import web
from homeassistant.components.media_player.const import MediaClass, MediaType
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .live_view import browser_may_watch
from .media import REASON_CONTINUOUS
from .media.clips import ClipRecord, ClipStore
from .recording import DATA_CLIPS
from .sharing import is_valid_id

CLIP_URL = "/api/doorstep/v1/clips/{clip_id}"
# A doorbell's continuous segments sit in a folder of their own, apart from the clips
# of rings and motion that a householder looks for first. Media browser titles are not
# translated by Home Assistant, so these are plain English like the rest of the tree.
CONTINUOUS_FOLDER = "continuous"
CONTINUOUS_FOLDER_TITLE = "Continuous recording"
EVENT_LABELS = {"ring": "Ring", "motion_start": "Motion"}


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    """Doorstep's clips as a media source."""
    return DoorstepClipsSource(hass)


class DoorstepClipsSource(MediaSource):
    """A folder per doorbell, newest clip first; continuous segments in a sub-folder,
    by day."""

    name = "Doorstep clips"

    def __init__(self, hass: HomeAssistant) -> None:
        """Clips come from the shared clip store."""
        super().__init__(DOMAIN)
        self.hass = hass

    def _store(self) -> ClipStore:
        store = self.hass.data.get(DATA_CLIPS)
        if store is None:
            raise Unresolvable("Doorstep is not running")
        return store

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """A clip id resolves to the authenticated clip URL."""
        clip_id = item.identifier.rpartition("/")[2]
        if not is_valid_id(clip_id) or self._store().get(clip_id) is None:
            raise Unresolvable(f"No such clip: {clip_id}")
        return PlayMedia(CLIP_URL.format(clip_id=clip_id), "video/mp4")

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """Root: doorbells; a doorbell: its event clips, newest first, and a folder of its
        continuous segments when there are any; that folder: days; a day: its segments,
        newest first."""
        clips = await self.hass.async_add_executor_job(self._store().list_clips)
        names = self._doorbell_names()
        if item.identifier:
            doorbell_id, _, folder = item.identifier.partition("/")
            title = names.get(doorbell_id, doorbell_id)
            mine = sorted(
                (clip for clip in clips if clip.doorbell_id == doorbell_id),
                key=lambda clip: clip.start,
                reverse=True,
            )
            segments = [clip for clip in mine if clip.reason == REASON_CONTINUOUS]
            section, _, day = folder.partition("/")
            if section == CONTINUOUS_FOLDER and not day:
                return self._days_folder(doorbell_id, title, segments)
            if section == CONTINUOUS_FOLDER:
                return self._day_folder(doorbell_id, title, day, segments)
            if folder:
                raise Unresolvable(f"No such folder: {item.identifier}")
            events = [clip for clip in mine if clip.reason != REASON_CONTINUOUS]
            return self._doorbell_folder(doorbell_id, title, events, bool(segments))
        root = BrowseMediaSource(
            domain=DOMAIN,
            identifier=None,
            media_class=MediaClass.DIRECTORY,
            media_content_type=MediaType.VIDEO,
            title=self.name,
            can_play=False,
            can_expand=True,
            children_media_class=MediaClass.DIRECTORY,
        )
        root.children = [
            _directory(doorbell_id, names.get(doorbell_id, doorbell_id))
            for doorbell_id in sorted({clip.doorbell_id for clip in clips})
        ]
        return root

    def _doorbell_folder(
        self, doorbell_id: str, title: str, events: list[ClipRecord], has_segments: bool
    ) -> BrowseMediaSource:
        folder = _directory(doorbell_id, title)
        children = []
        if has_segments:
            # First, so it is not lost below a long list of ring and motion clips.
            children.append(
                _directory(f"{doorbell_id}/{CONTINUOUS_FOLDER}", CONTINUOUS_FOLDER_TITLE)
            )
        children.extend(
            _video(
                f"{doorbell_id}/{clip.id}",
                f"{dt_util.as_local(clip.start):%Y-%m-%d %H:%M:%S} · "
                f"{EVENT_LABELS.get(clip.reason, clip.reason)}"
                f"{_times(clip.triggers)} · {clip.duration.total_seconds():.0f} s",
            )
            for clip in events
        )
        folder.children = children
        folder.children_media_class = MediaClass.VIDEO if not has_segments else None
        return folder

    def _days_folder(
        self, doorbell_id: str, title: str, segments: list[ClipRecord]
    ) -> BrowseMediaSource:
        """A folder per day, newest first: a month of segments is too long to scroll."""
        base = f"{doorbell_id}/{CONTINUOUS_FOLDER}"
        folder = _directory(base, f"{title}: {CONTINUOUS_FOLDER_TITLE}")
        folder.children_media_class = MediaClass.DIRECTORY
        days = sorted({_local_day(clip) for clip in segments}, reverse=True)
        folder.children = [
            _directory(f"{base}/{day}", f"{date.fromisoformat(day):%A %d %B %Y}") for day in days
        ]
        return folder

    def _day_folder(
        self, doorbell_id: str, title: str, day: str, segments: list[ClipRecord]
    ) -> BrowseMediaSource:
        base = f"{doorbell_id}/{CONTINUOUS_FOLDER}/{day}"
        try:
            heading = f"{title}: {date.fromisoformat(day):%A %d %B %Y}"
        except ValueError as err:
            raise Unresolvable(f"No such day: {day}") from err
        folder = _directory(base, heading)
        folder.children = [
            _video(
                f"{base}/{clip.id}",
                f"{dt_util.as_local(clip.start):%H:%M:%S} to {dt_util.as_local(clip.end):%H:%M:%S}",
            )
            for clip in segments
            if _local_day(clip) == day
        ]
        return folder

    def _doorbell_names(self) -> dict[str, str]:
        names = {}
        for device in dr.async_get(self.hass).devices:
            for domain, identifier in device.identifiers:
                if domain == DOMAIN:
                    names[identifier] = device.name_by_user or device.name or identifier
        return names


def _directory(identifier: str, title: str) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=MediaClass.DIRECTORY,
        media_content_type=MediaType.VIDEO,
        title=title,
        can_play=False,
        can_expand=True,
        children_media_class=MediaClass.VIDEO,
    )


def _video(identifier: str, title: str) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=MediaClass.VIDEO,
        media_content_type="video/mp4",
        title=title,
        can_play=True,
        can_expand=False,
    )


def _local_day(clip: ClipRecord) -> str:
    """The day a segment starts on, in Home Assistant's time zone (ISO date)."""
    return dt_util.as_local(clip.start).date().isoformat()


def _times(triggers: int) -> str:
    return f" ({triggers} times)" if triggers > 1 else ""


class ClipView(HomeAssistantView):
    """``GET /api/doorstep/v1/clips/{clip_id}``: a clip, for a household member at home."""

    url = CLIP_URL
    name = "api:doorstep:clip"
    requires_auth = True

    async def get(self, request: web.Request, clip_id: str) -> web.StreamResponse:
        """Serve the MP4 to logged-in users on the home network only."""
        hass: HomeAssistant = request.app[KEY_HASS]
        # Clips follow the home-network rule whatever the live-view option says: footage
        # leaves the house only through the sharing gate.
        if not browser_may_watch(hass, {}):
            return web.Response(status=HTTPStatus.FORBIDDEN, text="Clips are only shown at home")
        store = hass.data.get(DATA_CLIPS)
        if store is None or not is_valid_id(clip_id) or store.get(clip_id) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return web.FileResponse(
            store.clip_path(clip_id),
            headers={"Content-Type": "video/mp4", "Cache-Control": "no-store"},
        )
