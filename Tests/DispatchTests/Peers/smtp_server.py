#!/usr/bin/env python3
"""A real SMTP server on loopback for dispatch's tests (aiosmtpd).

Writes its port to --port-file once listening (on --port, or a free one), and every accepted
message to --out as <n>.eml. Modes: ok (accept), 451-once (answer the first DATA with 451, then
accept), 550 (refuse every recipient), 550-unknown (refuse recipients containing "unknown"),
452-full (answer recipients containing "full" with 452, temporary), picky (both), slow-rcpt:S
(answer each RCPT S seconds late, before any message data), slow-data:S (keep the message, then
answer its DATA S seconds late: a client that gives up first cannot know the relay has it). With
--mode-file the mode is read from that file at every command, so a test can switch it while
the server runs. With --cert/--key it requires STARTTLS; with --user/--password it requires
AUTH (PLAIN or LOGIN) before MAIL. Runs until killed (SIGTERM) or stdin closes.
"""
import asyncio
import argparse
import os
import signal
import socket
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, mode, out, mode_file=None):
        self.fixed_mode = mode
        self.mode_file = mode_file
        self.out = out
        self.data_calls = 0
        self.count = 0
        self.lock = threading.Lock()

    @property
    def mode(self):
        if self.mode_file and os.path.exists(self.mode_file):
            with open(self.mode_file) as f:
                text = f.read().strip()
            if text:
                return text
        return self.fixed_mode

    @staticmethod
    def delay(mode, name):
        if mode.startswith(name + ":"):
            return float(mode.split(":", 1)[1])
        return 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = self.mode
        if mode == "550" or (mode in ("550-unknown", "picky") and "unknown" in address):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if mode in ("452-full", "picky") and "full" in address:
            return "452 4.2.2 <%s>: mailbox full, try later" % address
        if self.delay(mode, "slow-rcpt"):
            await asyncio.sleep(self.delay(mode, "slow-rcpt"))
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode
        with self.lock:
            self.data_calls += 1
            if mode == "451-once" and self.data_calls == 1:
                return "451 4.3.0 temporary local problem, try again"
            self.count += 1
            n = self.count
        path = os.path.join(self.out, "%d.eml" % n)
        with open(path + ".tmp", "wb") as f:
            f.write(("X-Envelope-From: %s\r\nX-Envelope-To: %s\r\nX-TLS: %s\r\nX-Auth: %s\r\n" % (
                envelope.mail_from, ",".join(envelope.rcpt_tos), "yes" if session.ssl else "no",
                "yes" if session.authenticated else "no")).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        if self.delay(mode, "slow-data"):
            await asyncio.sleep(self.delay(mode, "slow-data"))
        return "250 2.0.0 Ok: queued as test-%d" % n


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--mode-file")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    tls_context = None
    if args.cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.cert, args.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (args.user is not None and auth_data.login.decode() == args.user
              and auth_data.password.decode() == args.password)
        return AuthResult(success=ok)

    kwargs = {}
    if args.user:
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls_context is not None)
    if tls_context:
        kwargs.update(tls_context=tls_context, require_starttls=True)
    handler = Handler(args.mode, args.out, args.mode_file)
    port = args.port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(args.port_file + ".tmp", args.port_file)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Stop when the test process goes away (stdin closes) or after 10 minutes at most.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait(600)
    controller.stop()


if __name__ == "__main__":
    main()
