import math

import pytest

from impairments.presets import presets, resolve
from impairments.presets import load_conditions_file as load_profile_file
from impairments.profile import GilbertElliott, Link, Profile, ProfileError


def test_both_sets_each_direction_and_sides_override():
    p = Profile(name="x", both={"delay_ms": 40, "loss_pct": 1}, uplink={"delay_ms": 60})
    assert p.uplink.delay_ms == 60 and p.uplink.loss_pct == 1
    assert p.downlink.delay_ms == 40
    assert p.rtt_ms() == 100


@pytest.mark.parametrize("fields, message", [
    ({"delay_ms": -1}, "greater than or equal to 0"),
    ({"loss_pct": 101}, "less than or equal to 100"),
    ({"delay_ms": 10, "jitter_ms": 2, "distribution": "gaussian"}, "'uniform', 'normal'"),
    ({"jitter_ms": 5}, "jitter_ms needs delay_ms"),
    ({"reorder_pct": 5}, "reorder_pct needs delay_ms"),
    ({"loss_pct": 1, "gilbert_elliott": {"p_pct": 1}}, "choose one loss model"),
    ({"bogus": 1}, "unknown field"),
])
def test_bad_values_name_the_field(tmp_path, fields, message):
    f = tmp_path / "bad.yaml"
    import yaml
    f.write_text(yaml.safe_dump({"name": "bad", "uplink": fields}))
    with pytest.raises(ProfileError) as err:
        load_profile_file(f)
    assert "uplink" in str(err.value) and message in str(err.value)


def test_malformed_yaml_is_one_clear_error(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("uplink: {delay_ms: [\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile_file(f)


def test_queue_limit_never_drops_at_configured_delay_and_rate():
    # netem's default limit 1000 drops above ~20 kpps at 50 ms; ours must hold the link's worth.
    fast = Link(delay_ms=50)
    assert fast.queue_limit() >= 50_000 * 0.05
    shaped = Link(delay_ms=400, rate_kbit=240)
    pps = 240_000 / 8 / 64
    assert shaped.queue_limit() >= pps * 0.4
    assert Link(limit_packets=77).queue_limit() == 77


def test_gilbert_elliott_model_figures():
    ge = GilbertElliott(p_pct=1.3, r_pct=25)
    assert ge.mean_burst_packets() == 4
    assert math.isclose(ge.loss_fraction(), 1.3 / 26.3)


def test_every_preset_has_a_source_and_resolves():
    for name, p in presets().items():
        assert p.source, f"preset {name} names no source"
        assert resolve(name) is p


def test_user_profile_file_works_where_a_preset_name_does(tmp_path):
    f = tmp_path / "customer.yaml"
    f.write_text("both: {delay_ms: 120, loss_pct: 3}\n")
    p = resolve(str(f))
    assert p.name == "customer" and p.downlink.loss_pct == 3


def test_unknown_profile_lists_presets():
    with pytest.raises(ProfileError, match="use a preset .*3g"):
        resolve("4.5g")
