"""Per-request footage sharing, free of Home Assistant: requests, the egress gate, the
audit log, signed manifests.

The Home Assistant glue builds one :class:`EgressGate` per hub, persists
:attr:`EgressGate.state` with :func:`state_to_dict` after every change, and maps
:class:`SharingError` subclasses to translated errors.
"""

# The clip contract lives below both rooms (media records clips, sharing releases them);
# the sharing API takes and raises its types, so they are part of this API too.
from custom_components.doorstep.clip_contract import (
    ClipInfo,
    ClipSource,
    check_id,
    child_path,
    is_valid_id,
    new_id,
)

from .approval import (
    FailureLimiter,
    Refusal,
    SessionKind,
    StepUpFacts,
    Verification,
    refusal_before_proof,
    verdict,
)
from .archive import CONTENT_TYPE
from .audit import AuditKind, AuditLog
from .exceptions import (
    ApprovalRefused,
    AuditCorruptError,
    AuditWriteError,
    ClipIntegrityError,
    CorruptStateError,
    FeedRejected,
    InvalidId,
    InvalidRequest,
    InvalidToken,
    InvalidTrustFile,
    NotReleasable,
    PreviewStale,
    ReleaseStopped,
    RequestClosed,
    SharingError,
    TooManyPending,
    UnknownRequest,
    UnknownRequester,
)
from .gate import EgressGate, Preview, Release, preview_digest
from .manifest import build_manifest
from .models import (
    Actor,
    AuditRef,
    Delivery,
    DeliveryMethod,
    FrozenClip,
    PickupLink,
    Requester,
    RequesterKind,
    RequesterStatus,
    RequestState,
    ShareRequest,
    requester_status,
)
from .refusals import RefusalSummary, RefusalThrottle
from .schema import REQUEST_SCHEMA, RequestFields, parse_request_body, validate_request
from .signing import HubKey, key_id_of
from .state import SharingState
from .store import STATE_VERSION, migrate, state_from_dict, state_to_dict
from .tokens import hash_token, new_requester_token
from .upload import (
    TRUSTED_REQUESTERS_FILE,
    RetryPolicy,
    Uploader,
    UploadResult,
    UploadStatus,
    trusted_context,
)

__all__ = [
    "CONTENT_TYPE",
    "REQUEST_SCHEMA",
    "STATE_VERSION",
    "TRUSTED_REQUESTERS_FILE",
    "Actor",
    "ApprovalRefused",
    "AuditCorruptError",
    "AuditKind",
    "AuditLog",
    "AuditRef",
    "AuditWriteError",
    "ClipInfo",
    "ClipIntegrityError",
    "ClipSource",
    "CorruptStateError",
    "Delivery",
    "DeliveryMethod",
    "EgressGate",
    "FailureLimiter",
    "FeedRejected",
    "FrozenClip",
    "HubKey",
    "InvalidId",
    "InvalidRequest",
    "InvalidToken",
    "InvalidTrustFile",
    "NotReleasable",
    "PickupLink",
    "Preview",
    "PreviewStale",
    "Refusal",
    "RefusalSummary",
    "RefusalThrottle",
    "Release",
    "ReleaseStopped",
    "RequestClosed",
    "RequestFields",
    "RequestState",
    "Requester",
    "RequesterKind",
    "RequesterStatus",
    "RetryPolicy",
    "SessionKind",
    "ShareRequest",
    "SharingError",
    "SharingState",
    "StepUpFacts",
    "TooManyPending",
    "UnknownRequest",
    "UnknownRequester",
    "UploadResult",
    "UploadStatus",
    "Uploader",
    "Verification",
    "build_manifest",
    "check_id",
    "child_path",
    "hash_token",
    "is_valid_id",
    "key_id_of",
    "migrate",
    "new_id",
    "new_requester_token",
    "parse_request_body",
    "preview_digest",
    "refusal_before_proof",
    "requester_status",
    "state_from_dict",
    "state_to_dict",
    "trusted_context",
    "validate_request",
    "verdict",
]
