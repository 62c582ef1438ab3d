"""The vocabulary of the call model, in one place."""

from __future__ import annotations

from typing import Final

# Scopes, from narrowest to widest. Report scopes use the same four values.
OWN: Final = "own"
PRIMARY_GROUP: Final = "primary_group"
MEMBER_GROUPS: Final = "member_groups"
ALL: Final = "all"
NONE: Final = "none"

REPORT_SCOPES: Final = (OWN, PRIMARY_GROUP, MEMBER_GROUPS, ALL)
PLAYBACK_GRANTS: Final = (NONE, OWN, PRIMARY_GROUP, MEMBER_GROUPS, ALL)

SCOPE_LABELS: Final = {
    NONE: "No playback",
    OWN: "Own Calls",
    PRIMARY_GROUP: "Primary Group",
    MEMBER_GROUPS: "Member Groups",
    ALL: "All Calls",
}

ROLES: Final = ("auditor", "admin")

DIRECTIONS: Final = ("inbound", "outbound", "internal")
OUTCOMES: Final = ("answered", "missed", "abandoned", "voicemail", "failed")

SEGMENT_KINDS: Final = ("talk", "ringing", "queue", "ivr", "voicemail", "hold", "conference")
TIME_QUALITIES: Final = ("exact", "derived", "estimated")

PENDING_ARCHIVE: Final = "pending_archive"
AVAILABLE: Final = "available"
MISSING: Final = "missing"
RECORDING_STATES: Final = (PENDING_ARCHIVE, AVAILABLE, MISSING)

SYSTEMS: Final = ("3cx", "asterisk", "freeswitch")
