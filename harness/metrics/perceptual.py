"""A perceptual score of the call's downlink: the far end's spoken prompt as the browser played it.

The far end loops a known speech prompt into the call, and the column's audio server records the
browser's speaker. ITU-T P.862.2 (wideband PESQ, the `pesq` package) compares the two after they
are brought to 16 kHz (sox) and time-aligned: the recording is matched against the looped prompt
by cross-correlation, so the reference is the stretch of prompt that was playing. Speech, not the
microphone's tone, is what is scored: PESQ's model is of speech.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from harness.audio.analysis import read_wav

RATE = 16_000
MIN_SECONDS = 3.0  # PESQ wants several seconds of speech; shorter windows are not scored
METHOD = "PESQ P.862.2 (wideband, 16 kHz), MOS-LQO"


def _to_16k(src: Path, start_s: float | None = None, seconds: float | None = None) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="rtcm-pesq-") as tmp:
        out = Path(tmp) / "x.wav"
        trim = ["trim", f"{start_s:.3f}", f"{seconds:.3f}"] if start_s is not None else []
        subprocess.run(["sox", "-q", str(src), "-r", str(RATE), "-c", "1", "-b", "16", str(out)] + trim,
                       check=True, capture_output=True, timeout=60)
        x, _ = read_wav(out)
    return x


def align(reference: np.ndarray, degraded: np.ndarray) -> tuple[np.ndarray, int]:
    """The stretch of the looped `reference` that best matches `degraded`, and where it starts."""
    period = len(reference)
    looped = np.tile(reference, int(np.ceil(len(degraded) / period)) + 2)
    n = 1 << int(np.ceil(np.log2(len(looped) + len(degraded))))
    corr = np.fft.irfft(np.fft.rfft(looped, n) * np.conj(np.fft.rfft(degraded, n)), n)
    lag = int(np.argmax(corr[:period]))
    return looped[lag:lag + len(degraded)], lag


def downlink_score(prompt: Path, speaker_wav: Path, start_s: float, end_s: float) -> dict:
    """Score the speaker's recording between `start_s` and `end_s` (offsets in it) against the prompt.

    Returns {"mos": float | None, "method", "seconds", "lag_s", "error"}: None with the reason when
    the window is too short or holds no speech PESQ can find."""
    from pesq import NoUtterancesError, pesq

    seconds = end_s - start_s
    out: dict = {"mos": None, "method": METHOD, "seconds": round(seconds, 2), "window_s": [round(start_s, 3),
                 round(end_s, 3)], "lag_s": None, "error": None}
    if seconds < MIN_SECONDS:
        out["error"] = f"{seconds:.1f} s of call is too short to score (at least {MIN_SECONDS:g} s)"
        return out
    reference = _to_16k(prompt)
    degraded = _to_16k(speaker_wav, max(0.0, start_s), seconds)
    if len(degraded) < MIN_SECONDS * RATE:
        out["error"] = f"the speaker recording holds {len(degraded) / RATE:.1f} s of that window"
        return out
    ref, lag = align(reference, degraded)
    out["lag_s"] = round(lag / RATE, 3)
    try:
        out["mos"] = round(float(pesq(RATE, ref, degraded, "wb")), 3)
    except NoUtterancesError:
        out["error"] = "PESQ found no speech in the speaker's recording"
    return out
