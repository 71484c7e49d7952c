#!/usr/bin/python3
"""A MUC occupant for Switchboard's Jitsi end-to-end tests, written with slixmpp.

It logs in over a plain client-to-server connection (the test Prosody on loopback,
SASL PLAIN allowed without TLS), joins the room with slixmpp's xep_0045 plugin (with a
XEP-0172 nick when --display-name is given) and prints on stdout:

    JOINED  once its own presence came back from the room (status 110);
    LEFT    once the room confirmed its leave, after stdin closed (the default) or
            after --stay SECONDS.

It exits 0 after LEFT; 1 when the room refused the join (the error condition on
stderr); 2 when the login failed or nothing happened within --timeout seconds.

    /usr/bin/python3 slix_occupant.py --jid alice@localhost --password pw \
        --host 127.0.0.1 --port 5222 --room conf1@conference.localhost --nick a1b2 \
        --display-name Alice
"""

import argparse
import asyncio
import logging
import sys
import threading

import slixmpp
from slixmpp.exceptions import PresenceError
from slixmpp.plugins.xep_0172 import UserNick
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
# Our protocol lines go to the real stdout; anything else printed (slixmpp 1.8's
# join_muc_wait prints stray lines) goes to stderr.
OUT = sys.stdout
sys.stdout = sys.stderr


class Occupant(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.room = slixmpp.JID(args.room).bare
        self.status = 2
        self.joined = False
        self.left = asyncio.Event()
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0172")
        self["feature_mechanisms"].unencrypted_plain = True
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("connection_failed", self.on_failed_auth)
        # The plugin forgets the room at leave_muc, before the room confirms the leave,
        # sees only join errors that echo the join element (Prosody's do not), and the
        # room's presence raises no roster events: read it raw.
        self.register_handler(Callback("room presence", MatchXPath("{jabber:client}presence"), self.on_room_presence))
        if args.display_name:
            self.add_filter("out", self.add_nick)

    def add_nick(self, stanza):
        """Adds the XEP-0172 nick to our available presence to the room."""
        if (isinstance(stanza, slixmpp.Presence) and stanza["to"].bare == self.room
                and stanza["type"] != "unavailable"):
            # Presence has a "nick" interface of its own (MUC), hence no stanza["nick"].
            nick = UserNick()
            nick.xml.text = self.args.display_name
            stanza.append(nick)
        return stanza

    async def on_start(self, _event):
        try:
            # Returns once our own presence came back (status 110).
            await self["xep_0045"].join_muc_wait(self.room, self.args.nick, maxstanzas=0,
                                                 timeout=self.args.timeout)
        except PresenceError as e:
            print("join refused: %s" % e.condition, file=sys.stderr, flush=True)
            self.finish(1)
            return
        except asyncio.TimeoutError:
            print("join not confirmed within %ss" % self.args.timeout, file=sys.stderr, flush=True)
            self.finish(2)
            return
        self.joined = True
        print("JOINED", file=OUT, flush=True)
        await self.stay()

    def on_room_presence(self, pres):
        if pres["from"].bare != self.room or pres["from"].resource not in ("", self.args.nick):
            return
        if pres["type"] == "unavailable":
            self.left.set()
        elif pres["type"] == "error" and not self.joined:
            print("join refused: %s" % pres["error"]["condition"], file=sys.stderr, flush=True)
            self.finish(1)

    async def stay(self):
        if self.args.stay is not None:
            await asyncio.sleep(self.args.stay)
        else:
            await stdin_closed(self.loop)
        self["xep_0045"].leave_muc(self.room, self.args.nick)
        try:
            await asyncio.wait_for(self.left.wait(), self.args.timeout)
        except asyncio.TimeoutError:
            print("leave not confirmed", file=sys.stderr, flush=True)
            self.finish(2)
            return
        print("LEFT", file=OUT, flush=True)
        self.finish(0)

    def on_failed_auth(self, _event):
        print("login failed", file=sys.stderr, flush=True)
        self.finish(2)

    def on_disconnected(self, _event):
        self.done.set()

    def finish(self, status):
        self.status = status
        self.disconnect()


def stdin_closed(loop):
    """A future that completes when stdin reaches end of file."""
    fut = loop.create_future()

    def read():
        while sys.stdin.buffer.read1(4096):
            pass
        loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))

    threading.Thread(target=read, daemon=True).start()
    return fut


async def main(args):
    xmpp = Occupant(args)
    xmpp.done = asyncio.Event()
    xmpp.connect(address=(args.host, args.port), force_starttls=False, disable_starttls=True)

    async def watchdog():
        await asyncio.sleep(args.timeout)
        if not xmpp.joined:
            print("not joined within %ss" % args.timeout, file=sys.stderr, flush=True)
            xmpp.finish(2)

    dog = asyncio.ensure_future(watchdog())
    await xmpp.done.wait()
    dog.cancel()
    return xmpp.status


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jid", required=True, help="account, user@domain")
    p.add_argument("--password", required=True)
    p.add_argument("--host", required=True, help="c2s host (loopback)")
    p.add_argument("--port", required=True, type=int, help="c2s port")
    p.add_argument("--room", required=True, help="full room JID, room@muc.domain")
    p.add_argument("--nick", required=True, help="MUC nick")
    p.add_argument("--display-name", help="XEP-0172 nick sent with the join")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--stay", type=float, help="leave after SECONDS")
    when.add_argument("--until-stdin-closes", action="store_true",
                      help="leave when stdin closes (the default)")
    p.add_argument("--timeout", type=float, default=30, help="seconds to join or leave (default 30)")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log on stderr")
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr)
    sys.exit(asyncio.run(main(args)))
