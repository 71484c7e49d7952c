"""A submission server for Switchboard's tests, run by internal/testpeer/smtppeer.

Usage: /usr/bin/python3 -u smtppeer.py CONFIG.json

CONFIG (written by the Go side, mode 0600) holds: host, port, tls_port, cert, key, user,
password, lmtp ("host:port" or ""), mail_log, control_dir, hostname.

Every connection must authenticate (AUTH PLAIN or LOGIN) before MAIL: 530 otherwise.
STARTTLS is offered on port; tls_port speaks TLS from the first byte. An accepted message
is delivered onward over LMTP when lmtp is set, then appended to mail_log as one JSON line.

Faults, controlled through files in control_dir:
  fail-*         each file makes one DATA fail with 451; the file is removed when used
  reject-rcpt    a glob (fnmatch, case-insensitive); matching RCPT TO get 550
  hold-quit      while it exists, QUIT is not answered (a crash point after DATA's 250)
"""

import asyncio
import base64
import email.parser
import email.policy
import fnmatch
import json
import logging
import os
import smtplib
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("smtppeer")


class Handler:
    def __init__(self, cfg):
        self.cfg = cfg
        self.control = cfg["control_dir"]

    def reject_pattern(self):
        try:
            with open(os.path.join(self.control, "reject-rcpt"), encoding="utf-8") as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def take_failure(self):
        """Consumes one fail-* token; True if there was one."""
        for name in sorted(os.listdir(self.control)):
            if not name.startswith("fail-"):
                continue
            try:
                os.remove(os.path.join(self.control, name))
                return True
            except FileNotFoundError:
                continue
        return False

    async def handle_QUIT(self, server, session, envelope):
        path = os.path.join(self.control, "hold-quit")
        if os.path.exists(path):
            log.info("QUIT held (test fault)")
            while os.path.exists(path):
                await asyncio.sleep(0.05)
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        pattern = self.reject_pattern()
        if pattern and fnmatch.fnmatchcase(address.lower(), pattern.lower()):
            log.info("RCPT TO:<%s> rejected (test fault)", address)
            return "550 5.1.1 <%s>: recipient rejected (test fault)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.take_failure():
            log.info("DATA from <%s> failed (test fault)", envelope.mail_from)
            return "451 4.3.0 temporary failure (test fault)"
        raw = envelope.original_content or b""
        lmtp_error = ""
        if self.cfg.get("lmtp"):
            loop = asyncio.get_running_loop()
            lmtp_error = await loop.run_in_executor(
                None, deliver_lmtp, self.cfg["lmtp"], envelope.mail_from, envelope.rcpt_tos, raw)
        headers = parse_headers(raw)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "message_id": headers.get("message-id", ""),
            "subject": headers.get("subject", ""),
            "user": login_of(session),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "lmtp_error": lmtp_error,
            "data": base64.b64encode(raw).decode("ascii"),
        }
        with open(self.cfg["mail_log"], "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        log.info("accepted mail from <%s> to %s", envelope.mail_from, envelope.rcpt_tos)
        return "250 2.0.0 OK: queued"


def parse_headers(raw):
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        return {k: str(msg.get(k, "")).strip() for k in ("message-id", "subject")}
    except Exception as e:  # a malformed message is still accepted and logged
        log.warning("cannot parse headers: %s", e)
        return {}


def login_of(session):
    data = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return ""


def deliver_lmtp(addr, mail_from, rcpt_tos, raw):
    """Delivers raw over LMTP; returns "" or what went wrong, per refused recipient."""
    host, port = addr.rsplit(":", 1)
    try:
        with smtplib.LMTP(host, int(port), timeout=30) as lmtp:
            refused = lmtp.sendmail(mail_from, rcpt_tos, raw)
    except smtplib.SMTPRecipientsRefused as e:
        refused = e.recipients
    except (OSError, smtplib.SMTPException) as e:
        log.warning("LMTP delivery failed: %s", e)
        return "LMTP: %s" % e
    if refused:
        log.warning("LMTP refused %s", refused)
        return "; ".join("%s: %d %s" % (r, c, m.decode("utf-8", "replace"))
                         for r, (c, m) in refused.items())
    return ""


def make_authenticator(user, password):
    want = (user.encode("utf-8"), password.encode("utf-8"))

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login, auth_data.password) == want)
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticator


async def main(cfg):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    handler = Handler(cfg)
    loop = asyncio.get_running_loop()

    def factory(tls_context):
        return lambda: SMTP(
            handler,
            hostname=cfg["hostname"],
            tls_context=tls_context,
            authenticator=make_authenticator(cfg["user"], cfg["password"]),
            auth_required=True,
            auth_require_tls=False,  # loopback test peer: plain AUTH is allowed too
            enable_SMTPUTF8=True,
            loop=loop,
        )

    plain = await loop.create_server(factory(ctx), cfg["host"], cfg["port"])
    implicit = await loop.create_server(factory(None), cfg["host"], cfg["tls_port"], ssl=ctx)
    print("smtppeer: ready on %s:%d (STARTTLS) and %s:%d (TLS)" % (
        cfg["host"], cfg["port"], cfg["host"], cfg["tls_port"]), flush=True)
    async with plain, implicit:
        await asyncio.gather(plain.serve_forever(), implicit.serve_forever())


class QuietFilter(logging.Filter):
    """Drops aiosmtpd's warnings about what this test peer does on purpose."""

    NOISE = ("auth_require_tls == False", "login_data is deprecated")

    def filter(self, record):
        return not any(n in record.getMessage() for n in self.NOISE)


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", message=".*login_data is deprecated")
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for h in logging.getLogger().handlers:
        h.addFilter(QuietFilter())
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    asyncio.run(main(config))
