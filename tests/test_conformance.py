"""Netem conformance: each kind of impairment, applied through the lab and measured on the wire.

Runs against every backend this machine has: the UML router always (real netem inside the
guest), the host-kernel router where the kernel has sch_netem (skipped, and said so, elsewhere).
Tolerances are the lab's promise (issue: impairment engine): delay mean within 1 ms, jitter sd
within 15 %, loss inside the 95 % interval over >= 2000 probes, rate within 5 %, and
Gilbert-Elliott bursts matching the model's mean.
"""

import math

import pytest

from impairments import linkcheck
from impairments.detect import host_has_netem
from impairments.lab import Lab
from impairments.profile import Profile

pytestmark = [pytest.mark.slow, pytest.mark.lab]
PROBES = 2000


def _backends():
    yield pytest.param("uml", id="uml")
    yield pytest.param("host", id="host", marks=pytest.mark.skipif(
        not host_has_netem(), reason="this host kernel has no sch_netem; the UML backend covers netem here"))


@pytest.fixture(scope="module", params=list(_backends()))
def netem_lab(request):
    with Lab(backend=request.param) as lab:
        # Measured: the first 2000 probes after a UML boot, right after a run of browser tests, can
        # carry a few ms of guest scheduling noise (sd 6.7 ms on a fixed 30 ms delay); later ones do not.
        linkcheck.check(lab, probes=300, interval_s=0.002)
        yield lab


def measure(lab, probes=PROBES, interval_s=0.002, **both):
    lab.apply(Profile(name="conformance", **both))
    return linkcheck.check(lab, probes=probes, interval_s=interval_s, measure_rate="rate" in str(both))


def inside_95(lab, configured_pct: float, count, **both) -> None:
    """The configured percentage lies inside the measured 95 % interval, in each direction.

    A 95 % interval misses a perfect link 1 time in 20 by definition, and this suite makes several
    such checks; so a miss is measured once more with fresh probes, and only two misses in a row
    fail (0.25 % for a perfect link, while a real bias still fails both).
    """
    for attempt in (1, 2):
        m = measure(lab, **both)
        missed = []
        for d in (m.uplink, m.downlink):
            lo, hi = linkcheck.wilson_interval(count(d), d.sent)
            if not lo <= configured_pct <= hi:
                missed.append((lo, hi, d))
        if not missed:
            return
    raise AssertionError(f"{configured_pct} % outside the 95 % interval twice: {missed}")


def test_fixed_delay_each_direction_within_1ms(netem_lab):
    m = measure(netem_lab, uplink={"delay_ms": 30}, downlink={"delay_ms": 80})
    assert abs(m.uplink.delay_ms_mean - 30) <= 1.0, m.uplink
    assert abs(m.downlink.delay_ms_mean - 80) <= 1.0, m.downlink
    assert m.uplink.loss_pct == 0 and m.downlink.loss_pct == 0


@pytest.mark.parametrize("distribution, expected_sd", [
    (None, 10 / math.sqrt(3)),  # netem's default: uniform on +-jitter
    ("normal", 10.0),
])
def test_jitter_sd_within_15_percent(netem_lab, distribution, expected_sd):
    link = {"delay_ms": 50, "jitter_ms": 10}
    if distribution:
        link["distribution"] = distribution
    m = measure(netem_lab, both=link)
    for d in (m.uplink, m.downlink):
        assert abs(d.delay_ms_mean - 50) <= 1.0, d
        assert abs(d.delay_ms_sd - expected_sd) <= 0.15 * expected_sd, d


@pytest.mark.parametrize("distribution", ["pareto", "paretonormal"])
def test_heavy_tailed_distributions_are_applied(netem_lab, distribution):
    m = measure(netem_lab, both={"delay_ms": 50, "jitter_ms": 10, "distribution": distribution})
    for d in (m.uplink, m.downlink):
        # A heavy right tail: the 95th percentile sits further above the median than a normal's 1.645 sd.
        assert d.delay_ms_p95 - d.delay_ms_p50 > 0.5 * d.delay_ms_sd, d
        assert 5 <= d.delay_ms_sd <= 20, d


@pytest.mark.parametrize("loss", [2.0, 10.0])
def test_random_loss_inside_95_percent_interval(netem_lab, loss):
    inside_95(netem_lab, loss, lambda d: d.sent - d.received, both={"loss_pct": loss})


def test_gilbert_elliott_bursts_match_the_model(netem_lab):
    p, r = 2.0, 25.0
    # ~150 bursts per direction: the mean burst's standard error is ~0.28 packets, a quarter of 4 is 3.5 of them.
    m = measure(netem_lab, probes=8000, interval_s=0.001, both={"gilbert_elliott": {"p_pct": p, "r_pct": r}})
    mean_burst = 100 / r
    stationary_loss = 100 * p / (p + r)
    for d in (m.uplink, m.downlink):
        assert abs(d.mean_loss_burst - mean_burst) <= 0.25 * mean_burst, d
        assert abs(d.loss_pct - stationary_loss) <= 0.35 * stationary_loss, d


def test_four_state_loss_is_bursty(netem_lab):
    m = measure(netem_lab, probes=5000, interval_s=0.001,
                both={"four_state": {"p13_pct": 3, "p31_pct": 20, "p32_pct": 5, "p23_pct": 50, "p14_pct": 0}})
    for d in (m.uplink, m.downlink):
        assert d.loss_pct > 1 and d.mean_loss_burst > 1.5, d


@pytest.mark.parametrize("rate", [256, 1000])
def test_rate_within_5_percent(netem_lab, rate):
    lab = netem_lab
    lab.apply(Profile(name="rate", both={"rate_kbit": rate}))
    m = linkcheck.check(lab, probes=200)
    for d in (m.uplink, m.downlink):
        assert abs(d.rate_kbit - rate) <= 0.05 * rate, d


def test_duplicate_corrupt_and_reorder(netem_lab):
    inside_95(netem_lab, 5.0, lambda d: d.duplicated, both={"duplicate_pct": 5})
    m = measure(netem_lab, both={"corrupt_pct": 5})  # a corrupted datagram fails its checksum: lost
    for d in (m.uplink, m.downlink):
        assert 2.5 <= d.loss_pct <= 7.5, d
    m = measure(netem_lab, both={"delay_ms": 10, "reorder_pct": 25, "reorder_gap": 5})
    for d in (m.uplink, m.downlink):
        assert d.reordered_pct > 5, d


def test_queue_limit_holds_a_fast_stream_at_high_delay(netem_lab):
    # 10 kpps held 200 ms is 2000 packets in the queue: netem's default limit of 1000 would drop half.
    m = measure(netem_lab, probes=4000, interval_s=0.0001, both={"delay_ms": 200})
    for d in (m.uplink, m.downlink):
        assert d.loss_pct == 0, d


def test_slots_release_in_bursts(netem_lab):
    # Slots every 20 ms: a probe waits for the next one, so delays spread evenly over 0-20 ms.
    m = measure(netem_lab, both={"slot": {"min_delay_ms": 20}})
    for d in (m.uplink, m.downlink):
        assert abs(d.delay_ms_mean - 10) <= 1.5, d
        assert abs(d.delay_ms_sd - 20 / 12 ** 0.5) <= 0.15 * 20 / 12 ** 0.5, d
        assert d.delay_ms_p95 <= 21, d
    m = measure(netem_lab, both={"delay_ms": 5})  # the slot goes away again
    # A slot left in place would put half the probes past 15 ms (p50 ~15, p95 ~24). The UML guest's
    # scheduling alone adds a tail here (sd 1.06 and 2.08 ms, mean 5.44 and 6.23 ms in two runs), so
    # the check reads the middle and the 95th percentile, not the spread.
    assert abs(m.uplink.delay_ms_p50 - 5) <= 1.0 and m.uplink.delay_ms_p95 < 15, m.uplink
