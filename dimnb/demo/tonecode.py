"""The demo "tone code": audio whose content says which call, segment and second it is.

Every 1-second frame of a demo recording plays a chord of four pure tones, one
per *role*, so a single short window anywhere inside a frame identifies it:

=============  ======  ========================  =================
role           values  frequency of value ``v``  range
=============  ======  ========================  =================
call_code      0..15   300 + 22·v Hz             300 – 630 Hz
segment_tag    0..7    652 + 22·v Hz             652 – 806 Hz
minute         0..59   828 + 22·v Hz             828 – 2126 Hz
second         0..59   2148 + 22·v Hz            2148 – 3446 Hz
=============  ======  ========================  =================

All 144 symbol frequencies are distinct integers 22 Hz apart, inside the
300–3500 Hz telephone band. Frame ``k`` (starting at ``k`` seconds into the
file) codes second ``k mod 3600`` as ``minute = s // 60`` and
``second = s % 60``; files longer than an hour wrap.

Frame layout (times within the frame)::

    0.00–0.05 s  silence
    0.05–0.95 s  the four tones (10 ms raised-cosine ramps at both ends)
    0.95–1.00 s  silence

Each tone has amplitude 0.1 of full scale (chord peak 0.4, RMS ≈ −17 dBFS).

The tones are frequency-multiplexed rather than time-multiplexed: any window
of ≥ 0.1 s inside 0.05–0.95 s carries the whole code, so one snapshot of a
browser ``AnalyserNode`` (fftSize 16384 at 44.1/48 kHz ≈ 0.34–0.37 s, ≈ 3 Hz
bins, Blackman window, set ``smoothingTimeConstant = 0``) decodes it, and
0.53 s of every second gives a clean snapshot.

Decoding (mirrored by :func:`decode_spectrum`, which a JS port can copy):
for every symbol take the largest linear magnitude among the bins within
±``TOLERANCE_HZ`` of its frequency; in each role pick the strongest symbol; the
code is accepted only if in every role the winner is ≥ ``MIN_RATIO`` × the
runner-up and ≥ ``MIN_FLOOR_RATIO`` × the median magnitude of the
250–3550 Hz bins. A window straddling two frames shows two strong symbols in
the ``second`` role, so it fails the ratio test instead of mixing two frames.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FRAME_S = 1.0
TONE_START_S = 0.05
TONE_END_S = 0.95
RAMP_S = 0.01
TONE_AMPLITUDE = 0.1  # of int16 full scale, per tone
SPACING_HZ = 22.0
TOLERANCE_HZ = 5.0
MIN_RATIO = 3.0
MIN_FLOOR_RATIO = 10.0
FLOOR_BAND_HZ = (250.0, 3550.0)

# role -> (base frequency, number of values)
ROLES: dict[str, tuple[float, int]] = {
    "call_code": (300.0, 16),
    "segment_tag": (652.0, 8),
    "minute": (828.0, 60),
    "second": (2148.0, 60),
}
SECONDS_PER_CYCLE = 3600


@dataclass(frozen=True, slots=True)
class Code:
    """What one frame says: the call, the segment and the second (0..3599) within the recording."""

    call_code: int
    segment_tag: int
    second: int

    @property
    def minute(self) -> int:
        return self.second // 60


def call_code(source_call_id: str) -> int:
    """A stable 0..15 code for a phone system's call id (first byte of its SHA-1, mod 16)."""
    return hashlib.sha1(source_call_id.encode("utf-8")).digest()[0] % 16


def symbol_frequency(role: str, value: int) -> float:
    base, count = ROLES[role]
    if not 0 <= value < count:
        raise ValueError(f"{role} must be in 0..{count - 1}, got {value}")
    return base + SPACING_HZ * value


def frequency_plan() -> dict[str, object]:
    """The whole scheme as plain JSON-able data, for a decoder in another language."""
    return {
        "frame_s": FRAME_S,
        "tone_start_s": TONE_START_S,
        "tone_end_s": TONE_END_S,
        "ramp_s": RAMP_S,
        "tone_amplitude": TONE_AMPLITUDE,
        "spacing_hz": SPACING_HZ,
        "tolerance_hz": TOLERANCE_HZ,
        "min_ratio": MIN_RATIO,
        "min_floor_ratio": MIN_FLOOR_RATIO,
        "floor_band_hz": list(FLOOR_BAND_HZ),
        "seconds_per_cycle": SECONDS_PER_CYCLE,
        "roles": {
            role: {"base_hz": base, "count": count, "frequencies_hz": [base + SPACING_HZ * v for v in range(count)]}
            for role, (base, count) in ROLES.items()
        },
    }


def _values_for_second(second: int) -> tuple[int, int]:
    s = second % SECONDS_PER_CYCLE
    return s // 60, s % 60


# ---------------------------------------------------------------------------- synthesis


@lru_cache(maxsize=8)
def _frame_tables(sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame waveforms: one per call_code, per segment_tag, per minute, per second (float32)."""
    n = int(round(FRAME_S * sample_rate))
    t = np.arange(n) / sample_rate
    env = np.zeros(n)
    a, b, r = TONE_START_S * sample_rate, TONE_END_S * sample_rate, RAMP_S * sample_rate
    idx = np.arange(n)
    inside = (idx >= a) & (idx < b)
    env[inside] = 1.0
    rise = inside & (idx < a + r)
    env[rise] = 0.5 - 0.5 * np.cos(np.pi * (idx[rise] - a) / r)
    fall = inside & (idx >= b - r)
    env[fall] = 0.5 - 0.5 * np.cos(np.pi * (b - idx[fall]) / r)
    scale = TONE_AMPLITUDE * 32767.0

    def table(role: str) -> np.ndarray:
        base, count = ROLES[role]
        freqs = base + SPACING_HZ * np.arange(count)
        return (scale * env * np.sin(2 * np.pi * freqs[:, None] * t[None, :])).astype(np.float32)

    tabs = (table("call_code"), table("segment_tag"), table("minute"), table("second"))
    for tab in tabs:
        tab.flags.writeable = False
    return tabs


def synthesize(call_code: int, segment_tag: int, duration_s: float, sample_rate: int = 8000) -> np.ndarray:
    """``duration_s`` seconds (rounded to whole samples) of coded audio as int16 mono."""
    symbol_frequency("call_code", call_code)
    symbol_frequency("segment_tag", segment_tag)
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration must be a finite number >= 0, got {duration_s}")
    calls, tags, minutes, seconds = _frame_tables(sample_rate)
    frame = calls.shape[1]
    total = int(round(duration_s * sample_rate))
    frames = -(-total // frame)
    head = calls[call_code] + tags[segment_tag]
    out = np.empty(frames * frame, dtype=np.int16)
    # One minute of frames per step keeps temporaries small and the loop short (60 steps per hour).
    for first in range(0, frames, 60):
        count = min(60, frames - first)
        minute = (first // 60) % 60
        block = seconds[:count] + minutes[minute] + head
        np.rint(block, out=block)
        out[first * frame : (first + count) * frame] = block.reshape(-1)
    return out[:total]


# ---------------------------------------------------------------------------- decoding


def _role_magnitudes(magnitudes: np.ndarray, bin_hz: float, role: str, tolerance_hz: float) -> np.ndarray:
    base, count = ROLES[role]
    freqs = base + SPACING_HZ * np.arange(count)
    reach = max(1, int(math.ceil(tolerance_hz / bin_hz)))
    centre = np.rint(freqs / bin_hz).astype(np.int64)
    offsets = np.arange(-reach, reach + 1)
    bins = np.clip(centre[:, None] + offsets[None, :], 0, len(magnitudes) - 1)
    near = np.abs(bins * bin_hz - freqs[:, None]) <= tolerance_hz + bin_hz / 2
    return np.where(near, magnitudes[bins], 0.0).max(axis=1)


def decode_spectrum(magnitudes: np.ndarray, bin_hz: float, tolerance_hz: float = TOLERANCE_HZ) -> Code | None:
    """Decode a linear magnitude spectrum (bin ``i`` at ``i * bin_hz`` Hz); ``None`` when not a clean frame."""
    magnitudes = np.asarray(magnitudes, dtype=np.float64)
    lo, hi = (int(f / bin_hz) for f in FLOOR_BAND_HZ)
    band = magnitudes[lo : hi + 1]
    if band.size == 0:
        return None
    floor = float(np.median(band))
    values: dict[str, int] = {}
    for role in ROLES:
        mags = _role_magnitudes(magnitudes, bin_hz, role, tolerance_hz)
        order = np.argsort(mags)
        best, runner_up = float(mags[order[-1]]), float(mags[order[-2]])
        if best <= 0 or best < MIN_RATIO * runner_up or best < MIN_FLOOR_RATIO * floor:
            return None
        values[role] = int(order[-1])
    return Code(values["call_code"], values["segment_tag"], values["minute"] * 60 + values["second"])


def decode_frequencies(frequencies: Iterable[float], tolerance_hz: float = TOLERANCE_HZ) -> Code | None:
    """Map the four tone frequencies of a frame (any order) to its code; ``None`` unless exactly one per role."""
    found: dict[str, int] = {}
    for f in frequencies:
        hit = symbol_at(f, tolerance_hz)
        if hit is None or hit[0] in found:
            return None
        found[hit[0]] = hit[1]
    if len(found) != len(ROLES):
        return None
    return Code(found["call_code"], found["segment_tag"], found["minute"] * 60 + found["second"])


def symbol_at(frequency: float, tolerance_hz: float = TOLERANCE_HZ) -> tuple[str, int] | None:
    """Which (role, value) a frequency is, if it lies within ``tolerance_hz`` of a symbol."""
    for role, (base, count) in ROLES.items():
        v = int(round((frequency - base) / SPACING_HZ))
        if 0 <= v < count and abs(frequency - (base + SPACING_HZ * v)) <= tolerance_hz:
            return role, v
    return None


def decode_window(samples: np.ndarray, sample_rate: int, start_s: float, length_s: float = 0.3) -> Code | None:
    """Decode the window ``[start_s, start_s + length_s)``; ``None`` if it is not inside one frame's tones."""
    first = max(0, int(round(start_s * sample_rate)))
    stop = min(len(samples), first + int(round(length_s * sample_rate)))
    chunk = np.asarray(samples[first:stop], dtype=np.float64)
    if len(chunk) < 0.08 * sample_rate:
        return None
    chunk = (chunk - chunk.mean()) * np.hanning(len(chunk))
    n_fft = 1 << max(len(chunk), sample_rate).bit_length()  # bins of at most ~1 Hz
    magnitudes = np.abs(np.fft.rfft(chunk, n_fft))
    return decode_spectrum(magnitudes, sample_rate / n_fft)


def decode_at(samples: np.ndarray, sample_rate: int, t: float) -> Code:
    """The code of the frame containing time ``t`` (reads that frame's whole tone span)."""
    k = math.floor(t / FRAME_S)
    start = k * FRAME_S + TONE_START_S + 0.02
    end = min(k * FRAME_S + TONE_END_S - 0.02, len(samples) / sample_rate - 0.01)
    code = decode_window(samples, sample_rate, start, end - start) if end - start >= 0.1 else None
    if code is None:
        raise ValueError(f"no tone code found in the frame at {t:.3f} s")
    return code
