"""Split-host mode delivers the whole event: previews cross the CURVE link for snapshots/clips.

Two separately started monitors on loopback: the capture role runs a real RTSP camera and a file
camera with a red flash; the inference role runs inference + alerts with a webhook receiver.
Nothing but the tcp link connects them (own instances, own ipc directories).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import pytest
from capture_support import free_port, rtsp_servers, wait_for
from e2e_support import write_flash_video
from extract_support import read_frames as clip_frames
from link_support import client_transport, keys_generate, server_transport
from monitor_support import Listener, Monitor, short_dir, write_config
from webhook_receiver import Receiver

from vadmon.alerts.signing import generate_secret

pytestmark = pytest.mark.slow


@pytest.fixture
def rtsp(vtest_path):
    yield from rtsp_servers(vtest_path)


def is_red(path: Path) -> bool:
    img = cv2.imread(str(path))
    b, g, r = (float(c) for c in img.reshape(-1, 3).mean(0))
    return r > 150 and g < 80 and b < 80


def test_split_host_events_have_snapshot_and_clip(
    tmp_path: Path, rtsp, vtest_path: Path, demo_checkpoint: Path, subprocess_env
) -> None:
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    for name in ("server", "camhost"):
        keys_generate(subprocess_env, keys, name)
    allowed.mkdir()
    shutil.copy(keys / "camhost.key", allowed / "camhost.key")
    port = free_port()
    # a 6 s flash 10 s in, looping every 24 s: the next flash comes 8 s after one ends (cutoff
    # 2 s, cooldown 5 s), and the link's bandwidth is measured in between
    flash = write_flash_video(tmp_path / "door.avi", vtest_path, frames=240, flash=(100, 160))
    cams = {"lobby": rtsp().url(), "door": str(flash)}
    secret = generate_secret()
    env = dict(subprocess_env, HOOK_SECRET=secret)
    inf_ipc, cap_ipc = short_dir() / "ipc", short_dir() / "ipc"
    with Receiver([secret]) as hook:
        webhooks = (
            f'webhooks:\n  - {{name: rx, url: {hook.url}, secret: "${{HOOK_SECRET}}", '
            "allow_private: true}\n"
        )
        inf_cfg = write_config(
            tmp_path / "inference.yaml", cams, demo_checkpoint, ipc=inf_ipc, extra=webhooks,
            transport=server_transport(port, keys, allowed),
            alerts="threshold: 0.6, min_duration_s: 1.0, cutoff_s: 2.0, cooldown_s: 5",
        )  # fmt: skip
        cap_cfg = write_config(
            tmp_path / "capture.yaml", cams, demo_checkpoint, ipc=cap_ipc,
            transport=client_transport(port, keys, "camhost"),
        )  # fmt: skip
        inference = Monitor(inf_cfg, env, role="inference").start()
        capture = Monitor(cap_cfg, env, role="capture").start()
        status = Listener(cap_ipc, ["lobby", "door"])
        try:

            def got(kind: str) -> list:
                return [r.json["data"] for r in hook.verified() if r.json["type"].endswith(kind)]

            assert wait_for(lambda: got("start"), 180), inference.output()[-3000:]
            start = got("start")[0]
            assert start["camera"] == "door", start
            assert start["snapshot_path"] and is_red(Path(start["snapshot_path"])), start
            assert wait_for(lambda: got("end"), 90), inference.output()[-3000:]
            end = got("end")[0]
            assert end["clip_path"], end
            frames = clip_frames(Path(end["clip_path"]))
            assert len(frames) >= 8, f"clip has {len(frames)} frames"
            reds = [f for f in frames if f[..., 2].mean() > 150 and f[..., 1].mean() < 80]
            assert reds and len(reds) < len(frames), "clip shows the flash with pre/post-roll"
            # bandwidth of the link per camera at the default preview settings, measured
            # while waiting for the next flash's event (about 15 s)
            t0 = time.monotonic()
            p0 = {c: status.counter(c, "link_preview_bytes") for c in cams}
            s0 = {c: status.counter(c, "link_snippet_bytes") for c in cams}
            n_end = len(got("end"))
            assert wait_for(lambda: len(got("start")) > n_end, 120), inference.output()[-3000:]
            dt = time.monotonic() - t0
            assert dt >= 5.0, f"the next event came {dt:.1f} s after the last ended"
            for c in cams:
                kbps_p = (status.counter(c, "link_preview_bytes") - p0[c]) / dt / 1000
                kbps_s = (status.counter(c, "link_snippet_bytes") - s0[c]) / dt / 1000
                print(f"link {c}: previews {kbps_p:.1f} kB/s, snippets {kbps_s:.1f} kB/s")
                assert kbps_p > 0
            # kill the capture side during the next flash: the event still ends with its clip
            capture.kill_all()
            assert wait_for(lambda: len(got("end")) > n_end, 60), inference.output()[-3000:]
            last = got("end")[-1]
            assert last["reason"].startswith("no scores"), last
            assert last["clip_path"] and clip_frames(Path(last["clip_path"]))
            assert inference.stop() == 0
            assert "Traceback" not in inference.output(), inference.output()[-3000:]
        finally:
            status.close()
            capture.kill_all()
            inference.kill_all()
