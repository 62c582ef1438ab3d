"""Every verb dimnb guards, declared once. dimnb.access decides each of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    description: str


VIEW_CALLS = Action("view-calls", "List calls and open their sessions (follows the user's report scope).")
PLAY_RECORDING = Action(
    "play-recording",
    "Play or download a recording (follows the playback grant, within the report scope).",
)
EXPORT_CALLS = Action("export-calls", "Export a call list to CSV (follows the report scope).")
VIEW_AUDIT = Action("view-audit", "Open the audit reports (auditor role).")
VIEW_AS = Action("view-as", "See the workbench as another user (admin role).")

ALL_ACTIONS = (VIEW_CALLS, PLAY_RECORDING, EXPORT_CALLS, VIEW_AUDIT, VIEW_AS)
