"""Engine recipes without a browser: arguments, preferences, columns."""

import re
from pathlib import Path

import playwright

from harness.engines import BrowserSpec, LaunchContext
from harness.engines.chromium import PLAYWRIGHT_DISABLED_FEATURES, chromium_args
from harness.engines.firefox import firefox_prefs


def _ctx(tmp_path: Path) -> LaunchContext:
    return LaunchContext(netns="rtcm-x-client", page_origin="http://198.18.1.2:8080", workdir=tmp_path,
                         mic_wav=tmp_path / "a.wav", exclude_host="198.18.1.2")


def test_our_disable_features_keeps_playwrights_own_list():
    """Our --disable-features replaces Playwright's; if Playwright's list changes, ours must follow."""
    bundle = Path(playwright.__file__).parent / "driver" / "package" / "lib" / "coreBundle.js"
    src = bundle.read_text()
    start = src.index("disabledFeatures = [")
    theirs = [f for f in re.findall(r'"([A-Za-z]+)"', src[start:src.index("].filter(Boolean)", start)])
              if not f.startswith("ms")]  # Edge-only switches
    assert theirs == PLAYWRIGHT_DISABLED_FEATURES


def test_chromium_args_per_audio_mode(tmp_path):
    fake = chromium_args(_ctx(tmp_path), BrowserSpec("chromium", "chromium", audio="fake"))
    pulse = chromium_args(_ctx(tmp_path), BrowserSpec("chromium", "chromium", audio="pulse"))
    assert "--use-fake-device-for-media-stream" in fake and f"--use-file-for-fake-audio-capture={tmp_path / 'a.wav'}" in fake
    assert "--use-fake-device-for-media-stream" not in pulse  # it would bypass the virtual devices
    for args in (fake, pulse):
        assert "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 198.18.1.2" in args
        assert sum(a.startswith("--disable-features=") for a in args) == 1
        assert "WebRtcHideLocalIpsWithMdns" in next(a for a in args if a.startswith("--disable-features="))


def test_firefox_prefs_per_audio_mode():
    fake = firefox_prefs(BrowserSpec("firefox", "firefox", audio="fake"))
    pulse = firefox_prefs(BrowserSpec("firefox", "firefox", audio="pulse"), {"media.foo": 1}, "http://198.18.1.2:8080")
    assert fake["media.navigator.streams.fake"] is True and fake["media.navigator.audio.fake_frequency"] == 440
    assert pulse["media.navigator.streams.fake"] is False and pulse["media.foo"] == 1
    assert pulse["dom.securecontext.allowlist"] == "198.18.1.2" and pulse["media.cubeb.backend"] == "pulse"
    for prefs in (fake, pulse):
        assert prefs["media.navigator.permission.disabled"] and prefs["media.getusermedia.insecure.enabled"]
        assert prefs["network.captive-portal-service.enabled"] is False


def test_launch_overrides_flat_or_per_column():
    from harness.pool import launch_overrides_for

    flat = {"args": ["--x"], "slow_mo": 5}
    assert launch_overrides_for(flat, "chromium-pixel7", "chromium") == flat
    keyed = {"*": {"timeout": 1}, "chromium": {"args": ["--a"]}, "chromium-pixel7": {"args": ["--b"]}}
    assert launch_overrides_for(keyed, "chromium-pixel7", "chromium") == {"timeout": 1, "args": ["--b"]}
    assert launch_overrides_for(keyed, "chromium", "chromium") == {"timeout": 1, "args": ["--a"]}
    assert launch_overrides_for(keyed, "firefox", "firefox") == {"timeout": 1}
    assert launch_overrides_for({}, "firefox", "firefox") == {}
