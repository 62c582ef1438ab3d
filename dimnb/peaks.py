"""Waveform peaks of a recording: computed once from the audio, cached by the file's checksum.

The peak of a bucket is the largest absolute sample in it (all channels), as a
fraction of full scale, stored as a byte (0..255). At the default 20 buckets a
second an hour of audio is 72,000 bytes. The file is read block by block with
soundfile, so memory stays flat however long the recording.

Cache: ``<data dir>/cache/peaks/<sha256>.v1.npz``, written atomically; a
checksum is a file's identity, so a cached entry is never stale.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from dimnb.datadir import DataDir

log = logging.getLogger(__name__)

BUCKET_SECONDS = 0.05
_VERSION = "v1"
_CHECKSUM_RE = re.compile(r"^[0-9a-fA-F]{16,128}$")
_BLOCK_BUCKETS = 4096


@dataclass(frozen=True)
class Peaks:
    values: np.ndarray  # uint8, one per bucket
    bucket_seconds: float
    duration_seconds: float

    def scaled(self, count: int, *, normalize: bool = True) -> list[float]:
        """``count`` columns (each the max of the buckets it covers) as floats in 0..1, for drawing.

        With ``normalize`` the loudest column is 1 (quiet recordings stay readable).
        """
        count = max(1, int(count))
        values = self.values.astype(np.float32) / 255.0
        if len(values) == 0:
            return [0.0] * count
        edges = np.linspace(0, len(values), count + 1)
        starts = np.minimum(np.floor(edges[:-1]).astype(np.int64), len(values) - 1)
        stops = np.maximum(np.ceil(edges[1:]).astype(np.int64), starts + 1)
        # maximum.reduceat needs strictly the start indices; the stop of column i is the start of i+1
        # except where columns share a bucket (more columns than buckets), handled by the fallback.
        if np.all(np.diff(starts) > 0):
            columns = np.maximum.reduceat(values, starts)
        else:
            columns = np.array([values[a:b].max() for a, b in zip(starts, stops, strict=True)], dtype=np.float32)
        if normalize and columns.max() > 0:
            columns = columns / columns.max()
        return [round(float(v), 3) for v in columns]


def compute_peaks(path: str | os.PathLike[str], bucket_seconds: float = BUCKET_SECONDS) -> Peaks:
    """Read the file once, block by block, and keep each bucket's peak."""
    with soundfile.SoundFile(str(path)) as f:
        rate = f.samplerate
        frames = f.frames
        bucket = max(1, int(round(rate * bucket_seconds)))
        out = np.zeros(max(0, math.ceil(frames / bucket)) if frames > 0 else 0, dtype=np.uint8)
        filled = 0
        block = bucket * _BLOCK_BUCKETS
        while True:
            data = f.read(block, dtype="float32", always_2d=True)
            if len(data) == 0:
                break
            magnitude = np.abs(data).max(axis=1)
            whole = len(magnitude) // bucket
            parts = [magnitude[: whole * bucket].reshape(whole, bucket).max(axis=1)] if whole else []
            if len(magnitude) % bucket:
                parts.append(magnitude[whole * bucket :].max(keepdims=True))
            peaks = np.concatenate(parts)
            scaled = np.minimum(np.ceil(peaks * 255.0), 255).astype(np.uint8)
            if filled + len(scaled) > len(out):  # a header that under-reported its length
                out = np.concatenate([out, np.zeros(filled + len(scaled) - len(out), dtype=np.uint8)])
            out[filled : filled + len(scaled)] = scaled
            filled += len(scaled)
    return Peaks(out[:filled], bucket * 1.0 / rate, frames / rate if rate else 0.0)


def cache_dir(data: DataDir) -> Path:
    return data.cache_dir / "peaks"


def _cache_file(directory: Path, checksum: str) -> Path | None:
    if not checksum or not _CHECKSUM_RE.match(checksum):
        return None
    return directory / f"{checksum.lower()}.{_VERSION}.npz"


def peaks_for(path: str | os.PathLike[str], checksum: str | None, directory: Path) -> Peaks:
    """The peaks of a recording, from the cache if it holds them, else computed and cached."""
    target = _cache_file(Path(directory), checksum or "")
    if target is not None and target.exists():
        try:
            with np.load(target) as stored:
                return Peaks(stored["values"], float(stored["bucket_seconds"]), float(stored["duration_seconds"]))
        except (OSError, ValueError, KeyError):
            log.warning("unreadable peaks cache entry %s: recomputing", target)
    peaks = compute_peaks(path)
    if target is not None:
        _store(target, peaks)
    return peaks


def _store(target: Path, peaks: Peaks) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".peaks-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, values=peaks.values, bucket_seconds=np.float64(peaks.bucket_seconds),
                         duration_seconds=np.float64(peaks.duration_seconds))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        # A read-only data directory (a dashboard kernel without write access) still gets its peaks.
        log.warning("could not cache peaks in %s", target.parent, exc_info=True)
