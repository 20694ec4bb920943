"""Faults found by independent testing (issue 20), alerts side: the real alert process
(``python -m vadmon.alerts``), real SQLite, a real webhook receiver.

Case 12: half-written temporaries a SIGKILL left are swept at the next start.
"""

from __future__ import annotations

from test_alerts import Harness
from webhook_receiver import Receiver

from vadmon.config import load_config


def test_start_sweeps_temp_files_a_killed_run_left(subprocess_env) -> None:
    with Receiver([]) as rx:
        h = Harness(subprocess_env, rx.url)
        try:
            media = load_config(h.config).storage.media_dir / "lobby"
            media.mkdir(parents=True)
            dead = media / ".20261201T120000-lobby-ab12.mp4.1f2e3d4c.mp4"  # atomic_path's name
            dead.write_bytes(b"")
            finished, notes = media / "20261201T110000-lobby-cd34.mp4", media / ".notes"
            finished.write_bytes(b"clip")
            notes.write_text("the user's own dotfile")
            h.start()
            assert h.wait_counter("temp_swept", 1)["temp_swept"] == 1
            assert not dead.exists() and finished.read_bytes() == b"clip" and notes.exists()
        finally:
            h.close()
