// A Matrix client's side of the widget API, as far as Switchboard's Jitsi join page needs
// it (Element's ClientWidgetApi, simplified): it loads the page's script into a sandbox
// with a window whose parent is this "client", asks for the widget's capabilities, answers
// get_openid first with "request" (the client asks its user) and then with the OpenID
// credentials given here, and prints where the page navigates: "NAVIGATE <url>".
//
//   node widget_host.js <widget.js> <page URL with widgetId, room, parentUrl> <openid JSON>
"use strict";
const vm = require("vm");
const fs = require("fs");

const [scriptPath, pageURL, openidJSON] = process.argv.slice(2);
const cred = JSON.parse(openidJSON);
const page = new URL(pageURL);
const widgetId = page.searchParams.get("widgetId");
const clientOrigin = new URL(page.searchParams.get("parentUrl")).origin;
const listeners = [];
let asked = 0;

function fail(msg) {
  console.error("FAIL " + msg);
  process.exit(1);
}

function deliver(data) {
  for (const fn of listeners) fn({ source: parent, origin: clientOrigin, data: data });
}

// parent is the client: it gets what the widget posts.
const parent = {
  postMessage(msg, targetOrigin) {
    if (targetOrigin !== clientOrigin) fail("the widget posted to " + targetOrigin);
    if (msg.widgetId !== widgetId) fail("wrong widgetId " + msg.widgetId);
    if (msg.api === "toWidget") {
      if (!msg.response) fail("an answer without response");
      if (msg.action === "capabilities") {
        setTimeout(() => deliver({ api: "toWidget", widgetId, requestId: "client-2", action: "notify_capabilities",
          data: { requested: msg.response.capabilities, approved: [] } }), 10);
      }
      return;
    }
    if (msg.api === "fromWidget" && msg.action === "get_openid") {
      asked++;
      if (asked > 1) return; // the widget asks again when it sees no answer; one flow is enough
      deliver(Object.assign({}, msg, { response: { state: "request" } }));
      setTimeout(() => deliver({ api: "toWidget", widgetId, requestId: "client-3", action: "openid_credentials",
        data: Object.assign({ state: "allowed", original_request_id: msg.requestId }, cred) }), 10);
      return;
    }
    fail("unexpected message " + JSON.stringify(msg));
  },
};

const statusEl = { set textContent(t) { console.error("status: " + t); } };
const win = {
  parent,
  location: {
    href: page.href,
    search: page.search,
    replace(url) {
      console.log("NAVIGATE " + url);
      process.exit(0);
    },
  },
  document: { referrer: "", getElementById: () => statusEl },
  addEventListener(type, fn) {
    if (type === "message") listeners.push(fn);
  },
  setTimeout,
  fetch: (url, opts) => fetch(url, opts),
};
vm.runInNewContext(fs.readFileSync(scriptPath, "utf8"), { window: win, URL, URLSearchParams, JSON, Object });
setTimeout(() => deliver({ api: "toWidget", widgetId, requestId: "client-1", action: "capabilities", data: {} }), 10);
setTimeout(() => fail("the page did not navigate within 20 s"), 20000).unref();
