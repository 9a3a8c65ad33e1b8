"""DTMF the far end received, both ways a browser can send it.

- RFC 4733 telephone events: `Rfc4733Decoder` turns the event packets of one RTP stream into
  digits (one per event, deduplicated by RTP timestamp) with their arrival times.
- In-band tones: `detect_inband` runs Goertzel filters over the received audio and reports the
  digits whose row and column tones are both present, with their start and end times.
"""

from __future__ import annotations

import struct

import numpy as np

EVENTS = "0123456789*#ABCD"
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")


def digit_of(event: int) -> str | None:
    return EVENTS[event] if 0 <= event < len(EVENTS) else None


class Rfc4733Decoder:
    """Telephone events of one stream (RFC 4733 section 2.3: `!BBH` event, E/R/volume, duration).

    A digit is one event: its packets share an RTP timestamp; the end bit arrives (usually three
    times) when the tone stops. A digit whose end packets were all lost still counts, closed by
    the next event or by `digits()`."""

    def __init__(self, clock_rate: int):
        self.clock_rate = clock_rate
        self.events: dict[int, dict] = {}
        self.packets = 0

    def feed(self, payload: bytes, rtp_timestamp: int, marker: bool, arrived: float) -> dict | None:
        """Feed one packet's payload; returns the event when this packet starts a new one."""
        if len(payload) < 4:
            return None
        self.packets += 1
        event, flags, duration = struct.unpack("!BBH", payload[:4])
        ended = bool(flags & 0x80)
        volume = flags & 0x3F
        found = self.events.get(rtp_timestamp)
        if found is None:
            found = {"digit": digit_of(event), "event": event, "rtp_timestamp": rtp_timestamp,
                     "arrived_at": arrived, "ended_at": None, "duration_ms": 0.0, "volume_dbm0": -volume,
                     "packets": 0, "ended": False, "marker": marker}
            self.events[rtp_timestamp] = found
            new = found
        else:
            new = None
        found["packets"] += 1
        found["duration_ms"] = max(found["duration_ms"], 1000.0 * duration / self.clock_rate)
        if ended and not found["ended"]:
            found["ended"], found["ended_at"] = True, arrived
        return new

    def digits(self) -> list[dict]:
        """Events in arrival order (a copy)."""
        return [dict(e) for e in sorted(self.events.values(), key=lambda e: e["arrived_at"])]


# --- in-band ---------------------------------------------------------------------------------------

DETECT_RATE = 8000
WINDOW = 205            # the classic Goertzel block at 8 kHz (25.6 ms): bins land near the DTMF tones
HOP = 80                # 10 ms steps: digit edges to within ~10 ms
MIN_TONE_DBFS = -36.0   # each tone's own level (RMS re full-scale square wave)
PEAK_MARGIN_DB = 8.0    # the strongest row (column) above the next one
MAX_TWIST_DB = 8.0      # row and column levels within this of each other
MIN_TONE_SHARE = 0.45   # the pair carries at least this share of the block's energy
MIN_BLOCKS = 3          # consecutive blocks for a digit (~45 ms of tone)
MAX_DROPOUT = 2         # blocks a digit may vanish for without ending (a lost packet)


def _to_8k(x: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if rate == DETECT_RATE:
        return x
    if rate % DETECT_RATE == 0:
        k = rate // DETECT_RATE
        n = x.size // k * k
        return x[:n].reshape(-1, k).mean(axis=1)  # boxcar low-pass, then decimate
    t = np.arange(0, x.size / rate, 1 / DETECT_RATE)
    return np.interp(t, np.arange(x.size) / rate, x)


def _tone_powers(blocks: np.ndarray) -> np.ndarray:
    """Energy of each DTMF frequency in each block (the Goertzel power as a DFT at one frequency),
    scaled so that a sine of amplitude A reads A^2/2 (its mean square)."""
    n = np.arange(WINDOW)
    freqs = np.array(ROWS + COLS)
    basis = np.exp(-2j * np.pi * np.outer(n, freqs) / DETECT_RATE)  # WINDOW x 8
    spectrum = blocks @ basis
    return 2.0 * np.abs(spectrum) ** 2 / WINDOW**2


def block_digits(x: np.ndarray, rate: int) -> tuple[list[str | None], float]:
    """The digit (or None) seen in each 10 ms step, and the step in seconds."""
    y = _to_8k(x, rate)
    if y.size < WINDOW:
        return [], HOP / DETECT_RATE
    count = 1 + (y.size - WINDOW) // HOP
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(count)[:, None]
    blocks = y[idx]
    power = _tone_powers(blocks)
    mean_square = np.mean(blocks * blocks, axis=1)
    out: list[str | None] = []
    floor = 10 ** (MIN_TONE_DBFS / 10)
    margin = 10 ** (PEAK_MARGIN_DB / 10)
    twist = 10 ** (MAX_TWIST_DB / 10)
    for p, ms in zip(power, mean_square):
        rows, cols = p[:4], p[4:]
        r, c = int(np.argmax(rows)), int(np.argmax(cols))
        pr, pc = rows[r], cols[c]
        second_r = np.max(np.delete(rows, r))
        second_c = np.max(np.delete(cols, c))
        ok = (pr > floor and pc > floor and pr > margin * second_r and pc > margin * second_c
              and 1 / twist < pr / pc < twist and ms > 0 and (pr + pc) / ms >= MIN_TONE_SHARE)
        out.append(KEYPAD[r][c] if ok else None)
    return out, HOP / DETECT_RATE


def detect_inband(x: np.ndarray, rate: int) -> list[dict]:
    """In-band DTMF digits in `x`: [{digit, start_s, end_s, duration_ms}], in order."""
    steps, hop_s = block_digits(x, rate)
    window_s = WINDOW / DETECT_RATE
    found: list[dict] = []
    current, start, last, gap = None, 0, 0, 0
    for i, d in enumerate(steps + [None] * (MAX_DROPOUT + 1)):
        if current is not None and d == current:
            last, gap = i, 0
            continue
        if current is not None:
            gap += 1
            if gap <= MAX_DROPOUT and d is None:
                continue
            if last - start + 1 >= MIN_BLOCKS:
                # A block detects the pair once the tone fills most of it: the first such block
                # starts at the onset, the last one ends near the tone's end (within ~10 ms).
                s, e = start * hop_s, last * hop_s + window_s
                found.append({"digit": current, "start_s": round(s, 4), "end_s": round(e, 4),
                              "duration_ms": round(1000 * (e - s), 1)})
            current = None
        if d is not None:
            current, start, last, gap = d, i, i, 0
    return found


def tone(digit: str, seconds: float, rate: int, amplitude: float = 0.3) -> np.ndarray:
    """A DTMF tone pair (for tests and for the far end's own probes)."""
    for r, row in enumerate(KEYPAD):
        if digit in row:
            t = np.arange(int(seconds * rate)) / rate
            c = row.index(digit)
            return amplitude * (np.sin(2 * np.pi * ROWS[r] * t) + np.sin(2 * np.pi * COLS[c] * t))
    raise ValueError(f"not a DTMF digit: {digit!r}")
