from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dimnb.demo import tonecode as tc
from dimnb.demo.tonecode import Code


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    t_in = np.arange(len(x)) / sr_in
    t_out = np.arange(int(len(x) * sr_out / sr_in)) / sr_out
    return np.interp(t_out, t_in, x.astype(np.float64))


def test_call_code_is_stable_and_in_range() -> None:
    ids = [f"00000000-01dc-688a-2607-57e5{i:08x}" for i in range(500)]
    codes = [tc.call_code(i) for i in ids]
    assert all(0 <= c < 16 for c in codes)
    assert codes == [tc.call_code(i) for i in ids]
    assert len(set(codes)) == 16
    assert tc.call_code("00000000-01dc-688a-2607-57e500000c10") == tc.call_code("00000000-01dc-688a-2607-57e500000c10")


def test_frequency_plan_constraints() -> None:
    plan = tc.frequency_plan()
    freqs = sorted(f for role in plan["roles"].values() for f in role["frequencies_hz"])  # type: ignore[union-attr]
    assert len(freqs) == 16 + 8 + 60 + 60 == len(set(freqs))
    assert 300 <= freqs[0] and freqs[-1] <= 3500
    assert min(np.diff(freqs)) >= 20
    assert plan["tone_end_s"] - plan["tone_start_s"] >= 0.4  # type: ignore[operator]
    assert tc.symbol_at(tc.symbol_frequency("minute", 17) + 3) == ("minute", 17)
    assert tc.symbol_at(1000.0 + 11) is None


def test_decode_frequencies_is_a_pure_mapping() -> None:
    code = Code(9, 4, 37 * 60 + 12)
    freqs = [
        tc.symbol_frequency("second", 12),
        tc.symbol_frequency("call_code", 9) - 2,
        tc.symbol_frequency("minute", 37) + 1.5,
        tc.symbol_frequency("segment_tag", 4),
    ]
    assert tc.decode_frequencies(freqs) == code
    assert tc.decode_frequencies(freqs[:3]) is None
    assert tc.decode_frequencies([*freqs, tc.symbol_frequency("second", 13)]) is None


def test_synthesize_shape_level_and_speed() -> None:
    x = tc.synthesize(3, 2, 12.345)
    assert x.dtype == np.int16 and len(x) == round(12.345 * 8000)
    assert 8000 < np.abs(x).max() < 16000  # moderate: chord peak about 0.4 of full scale
    assert np.all(x[: int(0.04 * 8000)] == 0)  # the gap at the start of each frame
    assert len(tc.synthesize(0, 0, 0.0)) == 0
    t0 = time.perf_counter()
    hour = tc.synthesize(15, 7, 3600.0)
    assert time.perf_counter() - t0 < 1.5
    assert len(hour) == 3600 * 8000
    with pytest.raises(ValueError):
        tc.synthesize(16, 0, 1.0)
    with pytest.raises(ValueError):
        tc.synthesize(0, 8, 1.0)


def test_round_trip_over_an_hour_at_random_points() -> None:
    rng = np.random.default_rng(1)
    x = tc.synthesize(13, 5, 3600.0)
    for s in [0, 59, 60, 61, 1799, 3540, 3599, *rng.integers(0, 3600, 60)]:
        s = int(s)
        start = s + rng.uniform(tc.TONE_START_S, tc.TONE_END_S - 0.3)
        assert tc.decode_window(x, 8000, start) == Code(13, 5, s)
        assert tc.decode_at(x, 8000, s + rng.uniform(0, 1)) == Code(13, 5, s)


def test_windows_straddling_two_frames_never_mix_them() -> None:
    x = tc.synthesize(1, 1, 130.0)
    for s in (59, 119):  # crossings of a minute boundary change two roles at once
        for off in np.arange(0.6, 1.1, 0.01):
            code = tc.decode_window(x, 8000, s + off, 0.3)
            assert code in (None, Code(1, 1, s), Code(1, 1, s + 1))


def test_silence_and_noise_decode_to_nothing() -> None:
    rng = np.random.default_rng(3)
    assert tc.decode_window(np.zeros(8000, np.int16), 8000, 0.1) is None
    noise = rng.normal(0, 3000, 8000)
    assert tc.decode_window(noise, 8000, 0.1) is None
    with pytest.raises(ValueError):
        tc.decode_at(np.zeros(16000, np.int16), 8000, 1.5)


def test_last_partial_frame_decodes() -> None:
    x = tc.synthesize(2, 3, 10.4)
    assert tc.decode_at(x, 8000, 10.2) == Code(2, 3, 10)


@pytest.mark.parametrize("sr_out", [48000, 44100])
def test_noise_and_resampling(sr_out: int) -> None:
    rng = np.random.default_rng(sr_out)
    x = tc.synthesize(7, 6, 75.0)
    y = resample(x, 8000, sr_out)
    y += rng.normal(0, 0.3 * np.std(x), len(y))  # about 10 dB SNR
    for s in rng.integers(0, 75, 25):
        s = int(s)
        start = s + rng.uniform(tc.TONE_START_S, tc.TONE_END_S - 0.3)
        assert tc.decode_window(y, sr_out, start) == Code(7, 6, s)
        assert tc.decode_at(y, sr_out, s + 0.99) == Code(7, 6, s)


def test_browser_analyser_snapshots() -> None:
    """Mimic AnalyserNode(fftSize=16384, Blackman) at 48 kHz read every 20 ms during playback."""
    sr, n = 48000, 16384
    x = tc.synthesize(10, 2, 12.0)
    y = resample(x, 8000, sr)
    window = np.blackman(n)
    decoded = wrong = total = 0
    for end in np.arange(n / sr, 12.0, 0.02):
        stop = int(end * sr)
        mags = np.abs(np.fft.rfft(y[stop - n : stop] * window))
        code = tc.decode_spectrum(mags, sr / n)
        total += 1
        if code is None:
            continue
        centre = end - n / sr / 2
        if code == Code(10, 2, int(centre)):
            decoded += 1
        else:
            wrong += 1
    assert wrong == 0
    assert decoded > 0.8 * total


@settings(max_examples=60, deadline=None)
@given(
    code=st.integers(0, 15),
    tag=st.integers(0, 7),
    second=st.integers(0, 3599),
    offset=st.floats(tc.TONE_START_S, tc.TONE_END_S - 0.3),
    gain=st.floats(0.05, 2.0),
)
def test_round_trip_property(code: int, tag: int, second: int, offset: float, gain: float) -> None:
    # Synthesize only the frames around `second` by slicing a longer signal: frame k is at k seconds.
    x = tc.synthesize(code, tag, second + 2.0)
    y = np.clip(x.astype(np.float64) * gain, -32768, 32767)
    assert tc.decode_window(y, 8000, second + offset) == Code(code, tag, second)
