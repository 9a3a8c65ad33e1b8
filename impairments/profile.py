"""Typed network profiles: what one direction of the lab link does to packets.

A `Profile` holds an uplink (browser -> far end) and a downlink (far end -> browser) `Link`.
Field names follow tc-netem(8) so a user can carry numbers over from `tc` one to one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Distribution = Literal["uniform", "normal", "pareto", "paretonormal"]

# A ceiling on the packet rate an unshaped lab link carries (UML measured ~55 kpps UDP at 1200 B).
UNSHAPED_PPS = 50_000
SMALLEST_PACKET_BYTES = 64


class ProfileError(ValueError):
    """A profile or its file is invalid; the message names the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GilbertElliott(_Strict):
    """Bursty loss: a good and a bad state (tc: `loss gemodel p r 1-h 1-k`)."""

    p_pct: float = Field(ge=0, le=100, description="chance per packet of going good -> bad")
    r_pct: float = Field(default=100, ge=0, le=100, description="chance per packet of going bad -> good")
    bad_loss_pct: float = Field(default=100, ge=0, le=100, description="loss while bad (tc's 1-h)")
    good_loss_pct: float = Field(default=0, ge=0, le=100, description="loss while good (tc's 1-k)")

    def mean_burst_packets(self) -> float:
        """Mean run of packets spent in the bad state."""
        return math.inf if self.r_pct == 0 else 100.0 / self.r_pct

    def loss_fraction(self) -> float:
        total = self.p_pct + self.r_pct
        bad = self.p_pct / total if total else 0.0
        return (bad * self.bad_loss_pct + (1 - bad) * self.good_loss_pct) / 100.0


class FourState(_Strict):
    """Markov loss with four states (tc: `loss state p13 p31 p32 p23 p14`)."""

    p13_pct: float = Field(ge=0, le=100)
    p31_pct: float = Field(default=100, ge=0, le=100)
    p32_pct: float = Field(default=0, ge=0, le=100)
    p23_pct: float = Field(default=100, ge=0, le=100)
    p14_pct: float = Field(default=0, ge=0, le=100)


class Slot(_Strict):
    """Deliver in bursts, as Wi-Fi and LTE aggregation do (tc: `slot MIN [MAX] [packets N] [bytes N]`).

    Packets wait for the next slot; slots open every MIN..MAX ms (uniformly drawn) and release at
    most `max_packets` packets or `max_bytes` bytes each (0: no cap)."""

    min_delay_ms: float = Field(gt=0, le=10_000)
    max_delay_ms: float | None = Field(default=None, gt=0, le=10_000)
    max_packets: int = Field(default=0, ge=0, le=1_000_000)
    max_bytes: int = Field(default=0, ge=0, le=100_000_000)

    @model_validator(mode="after")
    def _ordered(self) -> "Slot":
        if self.max_delay_ms is not None and self.max_delay_ms < self.min_delay_ms:
            raise ValueError("max_delay_ms must be at least min_delay_ms")
        return self


class Link(_Strict):
    """One direction of the impaired link."""

    delay_ms: float = Field(default=0, ge=0, le=60_000)
    jitter_ms: float = Field(default=0, ge=0, le=60_000)
    delay_correlation_pct: float = Field(default=0, ge=0, le=100)
    distribution: Distribution | None = None
    loss_pct: float = Field(default=0, ge=0, le=100)
    loss_correlation_pct: float = Field(default=0, ge=0, le=100)
    gilbert_elliott: GilbertElliott | None = None
    four_state: FourState | None = None
    reorder_pct: float = Field(default=0, ge=0, le=100)
    reorder_correlation_pct: float = Field(default=0, ge=0, le=100)
    reorder_gap: int = Field(default=0, ge=0)
    duplicate_pct: float = Field(default=0, ge=0, le=100)
    corrupt_pct: float = Field(default=0, ge=0, le=100)
    rate_kbit: float | None = Field(default=None, gt=0, le=100_000_000)
    rate_overhead_bytes: int = Field(default=0, ge=-1500, le=1500)
    limit_packets: int | None = Field(default=None, ge=1, le=10_000_000)
    slot: Slot | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Link":
        models = [m for m in ("loss_pct", "gilbert_elliott", "four_state") if getattr(self, m)]
        if len(models) > 1:
            raise ValueError(f"choose one loss model, not {' and '.join(models)}")
        if self.loss_correlation_pct and not self.loss_pct:
            raise ValueError("loss_correlation_pct needs loss_pct")
        if self.delay_correlation_pct and not self.jitter_ms:
            raise ValueError("delay_correlation_pct needs jitter_ms")
        if self.distribution and not self.jitter_ms:
            raise ValueError("distribution needs jitter_ms (it shapes the jitter)")
        if self.jitter_ms and not self.delay_ms:
            raise ValueError("jitter_ms needs delay_ms")
        if (self.reorder_pct or self.reorder_gap) and not self.delay_ms:
            raise ValueError("reorder_pct needs delay_ms: netem reorders by sending some packets undelayed")
        if (self.reorder_gap or self.reorder_correlation_pct) and not self.reorder_pct:
            raise ValueError("reorder_gap and reorder_correlation_pct need reorder_pct")
        if self.rate_overhead_bytes and self.rate_kbit is None:
            raise ValueError("rate_overhead_bytes needs rate_kbit")
        return self

    @property
    def mean_loss_fraction(self) -> float:
        if self.gilbert_elliott:
            return self.gilbert_elliott.loss_fraction()
        return self.loss_pct / 100.0

    def queue_limit(self) -> int:
        """netem's packet limit, sized so that it never drops at the configured delay and rate.

        netem holds every delayed packet in its queue; its default of 1000 silently drops above
        ~20 kpps at 50 ms. We size for the fastest packet stream the link can carry, held for the
        longest delay it can draw, with a factor of two to spare.
        """
        if self.limit_packets is not None:
            return self.limit_packets
        if self.rate_kbit:
            pps = self.rate_kbit * 1000 / 8 / SMALLEST_PACKET_BYTES
        else:
            pps = UNSHAPED_PPS
        hold_s = (self.delay_ms + 4 * self.jitter_ms) / 1000 + 1.0
        return max(1000, math.ceil(2 * min(pps, UNSHAPED_PPS) * hold_s))

    def is_ideal(self) -> bool:
        return self == Link()


class Profile(_Strict):
    """A named network condition for both directions.

    `both:` in YAML sets uplink and downlink at once; `uplink:`/`downlink:` then override per direction.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str = ""
    source: str = ""
    uplink: Link = Link()
    downlink: Link = Link()

    @model_validator(mode="before")
    @classmethod
    def _expand_both(cls, data):
        if isinstance(data, dict) and "both" in data:
            data = dict(data)
            both = data.pop("both") or {}
            if not isinstance(both, dict):
                raise ValueError("'both' must be a mapping of link fields")
            for side in ("uplink", "downlink"):
                data[side] = {**both, **(data.get(side) or {})}
        return data

    def rtt_ms(self) -> float:
        """The round-trip delay the profile adds (mean, both directions)."""
        return self.uplink.delay_ms + self.downlink.delay_ms

    def summary(self) -> str:
        parts = []
        for label, link in (("up", self.uplink), ("down", self.downlink)):
            bits = []
            if link.delay_ms:
                bits.append(f"{link.delay_ms:g}ms" + (f"±{link.jitter_ms:g}" if link.jitter_ms else ""))
            if link.loss_pct:
                bits.append(f"loss {link.loss_pct:g}%")
            if link.gilbert_elliott:
                bits.append(f"burst-loss {100 * link.mean_loss_fraction:.2g}%")
            if link.rate_kbit:
                bits.append(f"{link.rate_kbit:g}kbit/s")
            if link.slot:
                bits.append(f"slots every {link.slot.min_delay_ms:g}"
                            + (f"-{link.slot.max_delay_ms:g}" if link.slot.max_delay_ms else "") + "ms")
            for label_, value in (("reorder", link.reorder_pct), ("duplicate", link.duplicate_pct),
                                  ("corrupt", link.corrupt_pct)):
                if value:
                    bits.append(f"{label_} {value:g}%")
            parts.append(f"{label}: {', '.join(bits) or 'clean'}")
        return "; ".join(parts)


def format_validation_error(err: ValidationError, where: str) -> str:
    """One line per bad field, naming its path, what is wrong and the accepted values."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field; see `rtcmatrix profiles --fields` for the accepted ones"
        lines.append(f"{where}: {loc}: {msg}")
    return "\n".join(lines)


def profile_from_mapping(data: object, where: str) -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile must be a mapping with 'name' and link fields")
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        raise ProfileError(format_validation_error(err, where)) from None


def read_yaml(path: Path, what: str, error: type[ValueError] = ProfileError, fix: str = "") -> object:
    """Load a user's YAML file; unreadable or malformed input becomes one message naming the file."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror}){fix}") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from None
