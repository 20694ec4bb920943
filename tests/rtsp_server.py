"""A real RTSP server for tests, run with Debian's ``/usr/bin/python3`` (gi lives there).

Usage::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 [--file vtest.avi | --testsrc]
        [--mount /test] [--user U --password P] [--width W --height H --fps F]

A separate decode pipeline loops the file forever (seek to 0 on EOS) and pushes raw frames into
the shared RTSP media through an ``appsrc``; seeking inside the RTSP media itself would flush the
payloader and break connected clients. Prints ``READY`` once the server listens.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ENCODE = (
    "videoconvert ! video/x-raw,format=I420 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate=2000 ! "
    "rtph264pay name=pay0 pt=96 config-interval=1"
)


class FileLooper:
    """Decodes a file in real time, forever, handing each raw frame to the live appsrcs."""

    def __init__(self, path: str) -> None:
        self.pipeline = Gst.parse_launch(
            f'filesrc location="{path}" ! decodebin ! videoconvert ! '
            "video/x-raw,format=I420 ! appsink name=sink sync=true max-buffers=2 drop=true "
            "emit-signals=true"
        )
        self.sink = self.pipeline.get_by_name("sink")
        self.sink.connect("new-sample", self._on_sample)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message)
        self.appsrcs: list[Gst.Element] = []

    def start(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)

    def _on_message(self, _bus: Gst.Bus, msg: Gst.Message) -> None:
        if msg.type == Gst.MessageType.EOS:
            self.pipeline.seek_simple(
                Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0
            )
        elif msg.type == Gst.MessageType.ERROR:
            err, _dbg = msg.parse_error()
            print(f"decode error: {err.message}", file=sys.stderr, flush=True)

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        buf = sample.get_buffer()
        data = buf.extract_dup(0, buf.get_size())
        for src in list(self.appsrcs):
            if src.get_property("caps") is None:
                src.set_property("caps", sample.get_caps())
            src.emit("push-buffer", Gst.Buffer.new_wrapped(data))
        return Gst.FlowReturn.OK


def build_factory(
    args: argparse.Namespace, looper: FileLooper | None
) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    gop = max(1, int(args.fps))
    if looper is None:
        source = (
            f"videotestsrc is-live=true pattern=ball ! "
            f"video/x-raw,width={args.width},height={args.height},framerate={int(args.fps)}/1 ! "
        )
        factory.set_launch(f"( {source}{ENCODE.format(gop=gop)} )")
    else:
        factory.set_launch(
            "( appsrc name=src is-live=true format=time do-timestamp=true ! "
            f"{ENCODE.format(gop=gop)} )"
        )

        def on_configure(
            _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
        ) -> None:
            src = media.get_element().get_child_by_name("src")
            looper.appsrcs.append(src)
            media.connect("unprepared", lambda _m: looper.appsrcs.remove(src))

        factory.connect("media-configure", on_configure)
    factory.set_shared(True)
    return factory


def add_auth(
    server: GstRtspServer.RTSPServer,
    factory: GstRtspServer.RTSPMediaFactory,
    user: str,
    password: str,
) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken.new()
    token.set_string("media.factory.role", "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions.new()
    perms.add_permission_for_role("user", "media.factory.access", True)
    perms.add_permission_for_role("user", "media.factory.construct", True)
    factory.set_permissions(perms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", default="/test")
    parser.add_argument("--file", default="")
    parser.add_argument("--testsrc", action="store_true")
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=float, default=10.0)
    args = parser.parse_args()
    if not args.file and not args.testsrc:
        parser.error("give --file PATH or --testsrc")

    Gst.init(None)
    looper = None if args.testsrc else FileLooper(args.file)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = build_factory(args, looper)
    if args.user:
        add_auth(server, factory, args.user, args.password)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr, flush=True)
        return 1
    if looper is not None:
        looper.start()
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("READY", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
