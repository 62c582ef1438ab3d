"""Waveform peaks: right values, blockwise over long files, cached by checksum."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dimnb import peaks
from dimnb.demo import tonecode


def _direct(samples: np.ndarray, bucket: int) -> np.ndarray:
    magnitude = np.abs(samples.astype(np.float64) / 32768.0)
    if magnitude.ndim == 2:
        magnitude = magnitude.max(axis=1)
    n = -(-len(magnitude) // bucket)
    padded = np.zeros(n * bucket)
    padded[: len(magnitude)] = magnitude
    return np.minimum(np.ceil(padded.reshape(n, bucket).max(axis=1) * 255), 255).astype(np.uint8)


def test_peaks_follow_the_tone_code_frames(tmp_path) -> None:
    audio = tonecode.synthesize(5, 2, 10.3)
    path = tmp_path / "a.wav"
    sf.write(path, audio, 8000, subtype="PCM_16")
    p = peaks.compute_peaks(path)
    assert p.bucket_seconds == pytest.approx(0.05) and p.duration_seconds == pytest.approx(10.3)
    assert len(p.values) == 206
    # every second: silent 0–0.05 s and 0.95–1.0 s, the chord in between (peak ≈ 0.4 of full scale)
    for k in range(10):
        assert p.values[20 * k] == 0 and p.values[20 * k + 19] == 0
        assert 80 <= p.values[20 * k + 10] <= 110
    assert np.array_equal(p.values, _direct(audio, 400))


def test_long_files_are_read_blockwise_with_the_same_result(tmp_path) -> None:
    # longer than one read block (4096 buckets of 400 samples ≈ 205 s), with a ragged end
    audio = tonecode.synthesize(1, 1, 437.123)
    path = tmp_path / "long.wav"
    sf.write(path, audio, 8000, subtype="PCM_16")
    p = peaks.compute_peaks(path)
    assert np.array_equal(p.values, _direct(audio, 400))


def test_stereo_takes_the_louder_channel(tmp_path) -> None:
    left = tonecode.synthesize(1, 1, 3.0)
    stereo = np.stack([left, (left // 4)], axis=1)
    stereo[8000:16000, 0] = 0  # second 1: only the quiet channel
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 8000, subtype="PCM_16")
    p = peaks.compute_peaks(path)
    assert np.array_equal(p.values, _direct(stereo, 400))
    assert p.values[30] < p.values[10] / 3


def test_scaled_columns_keep_the_peaks(tmp_path) -> None:
    values = np.zeros(1000, dtype=np.uint8)
    values[333] = 200
    p = peaks.Peaks(values, 0.05, 50.0)
    cols = p.scaled(100)
    assert len(cols) == 100 and cols[33] == 1.0 and sum(cols) == 1.0  # a one-bucket spike survives
    assert p.scaled(100, normalize=False)[33] == pytest.approx(200 / 255, abs=1e-3)
    assert len(p.scaled(5000)) == 5000 and max(p.scaled(5000)) == 1.0  # more columns than buckets
    assert peaks.Peaks(np.zeros(0, dtype=np.uint8), 0.05, 0.0).scaled(3) == [0.0, 0.0, 0.0]


def test_cached_by_checksum_and_used_without_the_file(tmp_path) -> None:
    path = tmp_path / "c.wav"
    sf.write(path, tonecode.synthesize(2, 3, 5.0), 8000, subtype="PCM_16")
    cache = tmp_path / "cache" / "peaks"
    checksum = "ab" * 32
    first = peaks.peaks_for(path, checksum, cache)
    assert (cache / f"{checksum}.v1.npz").exists()
    path.unlink()  # the cache alone answers now
    again = peaks.peaks_for(path, checksum, cache)
    assert np.array_equal(first.values, again.values) and again.duration_seconds == first.duration_seconds


def test_a_bad_checksum_is_never_a_cache_path(tmp_path) -> None:
    path = tmp_path / "d.wav"
    sf.write(path, tonecode.synthesize(2, 3, 2.0), 8000, subtype="PCM_16")
    cache = tmp_path / "cache"
    for checksum in (None, "", "../../etc/passwd", "zz" * 32, "ab"):
        peaks.peaks_for(path, checksum, cache)
    assert not cache.exists()


def test_a_corrupt_cache_entry_is_recomputed(tmp_path) -> None:
    path = tmp_path / "e.wav"
    sf.write(path, tonecode.synthesize(2, 3, 2.0), 8000, subtype="PCM_16")
    cache = tmp_path / "cache"
    cache.mkdir()
    checksum = "cd" * 32
    (cache / f"{checksum}.v1.npz").write_bytes(b"not an npz")
    p = peaks.peaks_for(path, checksum, cache)
    assert len(p.values) == 40
    assert len(peaks.peaks_for(path, checksum, cache).values) == 40  # rewritten, readable
