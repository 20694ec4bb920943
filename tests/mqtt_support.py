"""A real Debian ``mosquitto`` for the MQTT tests, and a real subscribing paho client.

The broker runs on 127.0.0.1 on a free port with its own config, a password file made with
``mosquitto_passwd`` and an ACL file; readiness is a successful TCP connect (no fixed sleep).
Optional TLS listener with a CA made here (``cryptography``). ``kill()`` + ``start()`` again
keep the port, as a broker restarting under its clients does.
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from conftest import require_tool
from paho.mqtt.enums import CallbackAPIVersion

USERS = {"vadmon": "pub-secret-1", "watcher": "watch-secret-2"}
# vadmon may write its own prefix and discovery, not "blocked/#"; watcher reads everything
ACL = """\
user vadmon
topic readwrite vadmon/#
topic readwrite homeassistant/#
topic readwrite ha-test/#
topic read blocked/#

user watcher
topic read #
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout: float, what: str, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class TlsFiles:
    ca: Path
    cert: Path  # the broker's, for "localhost" only (so 127.0.0.1 is a name mismatch)
    key: Path
    client_cert: Path
    client_key: Path


def make_tls(directory: Path) -> TlsFiles:
    """A throwaway CA, a broker certificate for ``localhost`` and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: str, key, issuer: str, issuer_key, ca: bool = False) -> bytes:
        b = (
            x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )  # fmt: skip
        if subject == "localhost":
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def pem(key) -> bytes:
        fmt = serialization.PrivateFormat.PKCS8
        return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())

    ca_key, key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    files = TlsFiles(*(directory / n for n in ("ca.pem", "broker.pem", "broker.key",
                                              "client.pem", "client.key")))  # fmt: skip
    files.ca.write_bytes(cert("vadmon test CA", ca_key, "vadmon test CA", ca_key, ca=True))
    files.cert.write_bytes(cert("localhost", key, "vadmon test CA", ca_key))
    files.key.write_bytes(pem(key))
    files.client_cert.write_bytes(cert("vadmon client", client_key, "vadmon test CA", ca_key))
    files.client_key.write_bytes(pem(client_key))
    return files


class Broker:
    """One mosquitto process; ``port`` (plain) and ``tls_port`` (when ``tls``) on 127.0.0.1."""

    def __init__(self, directory: Path, tls: TlsFiles | None = None) -> None:
        self.exe = require_tool("mosquitto", "mosquitto")
        passwd = require_tool("mosquitto_passwd", "mosquitto")
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.passwd_tool = passwd
        pw = self.passwd = directory / "passwd"
        acl = directory / "acl"
        acl.write_text(ACL)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        lines = [
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root it would switch to mosquitto
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {pw}",
            f"acl_file {acl}",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",  # "New client connected ... as <client id>"
            f"listener {self.port} 127.0.0.1",
        ]
        if tls is not None:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {tls.ca}",
                f"certfile {tls.cert}",
                f"keyfile {tls.key}",
                "require_certificate true",  # mutual TLS: clients show a cert from the CA
            ]
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_passwd(self, users: tuple[str, ...]) -> None:
        tmp = self.passwd.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        for i, user in enumerate(users):
            args = [self.passwd_tool, "-b", *(["-c"] if i == 0 else []), str(tmp), user]
            subprocess.run([*args, USERS[user]], check=True, capture_output=True, timeout=30)
        tmp.replace(self.passwd)

    def allow_all(self) -> None:
        """Every user may log in again (password file rewritten, mosquitto reloads on HUP)."""
        self._write_passwd(tuple(USERS))
        self.proc.send_signal(signal.SIGHUP)

    def start(self, users: tuple[str, ...] = tuple(USERS), timeout: float = 20.0) -> None:
        """Start (again, same ports) with only ``users`` able to log in."""
        self._write_passwd(users)
        log = (self.dir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()

        def up() -> bool:
            assert self.proc.poll() is None, (self.dir / "mosquitto.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return False
            return True

        wait_until(up, timeout, "mosquitto to accept connections")

    def log(self) -> str:
        return (self.dir / "mosquitto.log").read_text(errors="replace")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.kill()


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    t: float
    qos: int

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """A real subscriber (user ``watcher``) recording every message on ``#``."""

    def __init__(self, broker: Broker, topic: str = "#") -> None:
        self.lock = threading.Lock()
        self.messages: list[Message] = []
        self.subscribed = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{free_port()}",
                        protocol=paho.MQTTv5)  # fmt: skip
        c.username_pw_set("watcher", USERS["watcher"])
        c.on_connect = lambda cl, *_: cl.subscribe(topic, qos=2)
        c.on_subscribe = lambda *_: self.subscribed.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(0.1, 0.5)
        c.connect_async("127.0.0.1", broker.port)
        c.loop_start()
        self.client = c
        assert self.subscribed.wait(20), "the watcher never subscribed"

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(
                Message(msg.topic, bytes(msg.payload), msg.retain, time.time(), msg.qos)
            )

    def on(self, topic: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def wait(self, topic: str, pred=lambda m: True, timeout: float = 20.0) -> Message:
        return wait_until(
            lambda: next((m for m in self.on(topic) if pred(m)), None), timeout, f"{topic}"
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_section(url: str, prefix: str = "vadmon", password: str = USERS["vadmon"],
                 extra: str = "") -> str:  # fmt: skip
    """The ``mqtt:`` YAML for tests/explain_support.write_config(extra=...)."""
    return (
        f"mqtt:\n  url: {url}\n  username: vadmon\n  password: {password}\n"
        f"  topic_prefix: {prefix}\n{extra}"
    )
