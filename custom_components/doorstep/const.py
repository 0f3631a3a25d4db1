"""Constants for the Doorstep integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "doorstep"

# Config entry data keys. Host and port use Home Assistant's CONF_HOST / CONF_PORT.
CONF_DEVICE_ID: Final = "device_id"
CONF_FINGERPRINT: Final = "fingerprint"
CONF_TOKEN: Final = "token"  # noqa: S105 -- a key name, not a secret
CONF_CODE: Final = "code"
# Devices that push events (DoorBird) call the hub at a URL with this secret in it.
CONF_PUSH_SECRET: Final = "push_secret"  # noqa: S105 -- a key name, not a secret

# Options.
CONF_RING_COOLDOWN: Final = "ring_cooldown"
DEFAULT_RING_COOLDOWN: Final = 0
MAX_RING_COOLDOWN: Final = 300

# Live view (invariant I3): off by default, so only the home network may watch.
CONF_ALLOW_REMOTE_LIVE_VIEW: Final = "allow_remote_live_view"
CONF_HOME_NETWORKS: Final = "home_networks"

# Bus events and device trigger types.
EVENT_RING: Final = "doorstep_ring"
TRIGGER_TYPE_PRESSED: Final = "pressed"

# Repair issue ids are suffixed with the device id.
ISSUE_IDENTITY_CHANGED: Final = "identity_changed"
ISSUE_VIDEO_PROFILE: Final = "video_profile"
ISSUE_CLOUD_SERVICES: Final = "cloud_services"

# What the hub calls itself when it pairs; the doorbell may show it in its own UI.
PAIRING_CLIENT_NAME: Final = "Home Assistant"

# The sharing gate lives in its own config entry ("Doorstep sharing"), made automatically.
CONF_KIND: Final = "kind"
KIND_SHARING: Final = "sharing"
SHARING_UNIQUE_ID: Final = "doorstep_sharing"

# Where Doorstep keeps its files under the Home Assistant config directory.
STORAGE_DIR: Final = "doorstep"
SHARING_STORE_KEY: Final = "doorstep.sharing"
SHARING_STORE_VERSION: Final = 2

EVENT_SHARE_REQUESTED: Final = "doorstep_share_requested"
# Dispatcher signal: requests changed, or sharing started or stopped (for the card).
SIGNAL_SHARING_CHANGED: Final = "doorstep_sharing_changed"
ISSUE_SHARING_STATE_CORRUPT: Final = "sharing_state_corrupt"
ISSUE_AUDIT_WRITE_FAILED: Final = "audit_write_failed"
# Suffixed with the request id.
ISSUE_UPLOAD_FAILED: Final = "upload_failed"

# Recording (per doorbell options) and retention (for the whole clip store).
CONF_RECORD_CLIPS: Final = "record_clips"
CONF_PRE_ROLL: Final = "pre_roll"
CONF_POST_ROLL: Final = "post_roll"
DEFAULT_PRE_ROLL: Final = 10
DEFAULT_POST_ROLL: Final = 10
MAX_ROLL: Final = 60
# Continuous recording: off by default; the day is cut into segments of this many seconds.
CONF_RECORD_CONTINUOUS: Final = "record_continuous"
# Off by default: recording sound on a public street is restricted in many places.
CONF_RECORD_AUDIO: Final = "record_audio"
# Where this doorbell is, when it is not at Home Assistant's own location; area feeds
# match their requests against it.
CONF_LOCATION: Final = "location"
CONF_SEGMENT_LENGTH: Final = "segment_length"
DEFAULT_SEGMENT_LENGTH: Final = 600
MIN_SEGMENT_LENGTH: Final = 10
MAX_SEGMENT_LENGTH: Final = 3600
RETENTION_MAX_AGE: Final = timedelta(days=30)
RETENTION_MAX_BYTES: Final = 10 * 1024**3
# Sent (with the doorbell id, or None for all) when clips are saved or deleted.
SIGNAL_CLIPS_CHANGED: Final = "doorstep_clips_changed"

# Area feeds (docs/feeds.md), in the sharing entry's options.
CONF_FEEDS: Final = "feeds"
CONF_FEED_URL: Final = "url"
CONF_FEED_FINGERPRINT: Final = "fingerprint"
CONF_FEED_PROXY: Final = "feed_proxy"
# Sharing entry option: browsers connecting from the hub itself (127.0.0.1, ::1) with no
# proxy header count as home. Off by default: a tunnel ending on the hub looks the same.
CONF_HUB_BROWSERS_AT_HOME: Final = "hub_browsers_at_home"
FEEDS_STORE_KEY: Final = "doorstep.feeds"
FEEDS_STORE_VERSION: Final = 1
# Suffixed with the subscription's id; the translation key is feed_<reason>.
ISSUE_FEED_FAILING: Final = "feed_failing"
# A feed that fails this many polls in a row (about an hour and a half) gets a repair.
FEED_FAILURES_BEFORE_ISSUE: Final = 3
