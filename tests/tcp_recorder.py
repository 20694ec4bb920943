"""A TCP forwarder on 127.0.0.1 that records what the client sent (tests: what crossed the wire).

Used to prove what vadmon puts on the wire to a camera (no pre-emptive credentials, the RTSP
transport it asks for) against the real RTSP server, which cannot be asked afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpRecorder:
    """``with TcpRecorder(port) as rec:`` connect to ``rec.port``; ``rec.sent()`` = client bytes."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sent: list[bytes] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closing = False

    def __enter__(self) -> TcpRecorder:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self.listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.close()

    def sent(self) -> bytes:
        with self._lock:
            return b"".join(self._sent)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        src.settimeout(None)
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                if record:
                    with self._lock:
                        self._sent.append(chunk)
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
