#!/usr/bin/python3
"""An independent XMPP client (slixmpp) for the XMPP bridge's end-to-end test.

It logs in over plain c2s on loopback, sends one message with an XEP-0184 receipt request
to a Matrix user's JID on the bridge, waits for the bridge's receipt and for an answer
with the expected body, and prints one JSON line per thing it saw. Exit code 0 means both
arrived in time.
"""
import argparse
import asyncio
import json
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.got_receipt = False
        self.got_answer = False
        self.sent_id = None
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0184")
        self["xep_0184"].auto_request = True
        self["xep_0184"].auto_ack = True
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.message)
        self.add_event_handler("receipt_received", self.receipt)

    def report(self, **kw):
        print(json.dumps(kw), flush=True)

    async def start(self, _event):
        self.send_presence()
        msg = self.make_message(mto=self.args.to, mbody=self.args.body, mtype="chat")
        msg["id"] = "slix-1"
        msg.send()
        self.sent_id = "slix-1"
        self.report(event="sent", id="slix-1")

    def message(self, msg):
        if msg["type"] == "error":
            self.report(event="error", id=msg["id"], condition=msg["error"]["condition"])
            return
        if msg["body"]:
            self.report(event="message", sender=str(msg["from"].bare), body=msg["body"])
            if msg["body"] == self.args.expect:
                self.got_answer = True
        self.check()

    def receipt(self, msg):
        self.report(event="receipt", id=msg["receipt"])
        if msg["receipt"] == self.sent_id:
            self.got_receipt = True
        self.check()

    def check(self):
        if self.got_receipt and self.got_answer:
            self.disconnect()


def main():
    p = argparse.ArgumentParser()
    for a in ("jid", "password", "host", "to", "body", "expect"):
        p.add_argument("--" + a, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    xmpp = Client(args)
    xmpp.enable_plaintext = True
    xmpp.connect((args.host, args.port), use_ssl=False, force_starttls=False, disable_starttls=True)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, args.timeout))
    except asyncio.TimeoutError:
        xmpp.report(event="timeout", receipt=xmpp.got_receipt, answer=xmpp.got_answer)
        return 1
    return 0 if xmpp.got_receipt and xmpp.got_answer else 1


if __name__ == "__main__":
    sys.exit(main())
