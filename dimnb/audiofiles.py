"""Facts about an audio file on disk: size, checksum, format and duration (soundfile reads the header)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import soundfile

MIME_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "gsm": "audio/x-gsm",
}


@dataclass(frozen=True)
class AudioFacts:
    size_bytes: int
    sha256: str
    format: str | None
    duration_seconds: float | None
    sample_rate: int | None
    channels: int | None


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def probe(path: Path) -> AudioFacts:
    """Read a file's facts; a file soundfile cannot parse still gets its size and checksum."""
    path = Path(path)
    size = path.stat().st_size
    checksum = sha256_file(path)
    fmt = path.suffix.lower().lstrip(".") or None
    try:
        info = soundfile.info(str(path))
        return AudioFacts(size, checksum, fmt, float(info.duration), int(info.samplerate), int(info.channels))
    except (RuntimeError, soundfile.LibsndfileError):
        return AudioFacts(size, checksum, fmt, None, None, None)


def mime_type(fmt: str | None) -> str:
    return MIME_TYPES.get((fmt or "").lower(), "application/octet-stream")
