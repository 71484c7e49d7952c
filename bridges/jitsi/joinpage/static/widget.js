// Switchboard's Jitsi join page for Jitsi's token authentication (modules.jitsi auth: jwt).
// It runs as a Matrix widget: it asks the Matrix client for the user's OpenID token
// (widget API action get_openid), exchanges it at Switchboard's POST /token (next to this
// page) for a Jitsi token of the room's conference, and opens the conference with it. The
// OpenID token goes nowhere else; nothing is stored.
(function (win) {
  "use strict";
  var params = new URLSearchParams(win.location.search);
  var widgetId = params.get("widgetId");
  var roomId = params.get("room");
  var parentOrigin = null;
  try {
    parentOrigin = new URL(params.get("parentUrl") || win.document.referrer).origin;
  } catch (e) {
    parentOrigin = null;
  }
  var seq = 0;
  var openidRequest = null;
  var attempts = 0;
  var joining = false;

  function status(text) {
    var el = win.document && win.document.getElementById("status");
    if (el) {
      el.textContent = text;
    }
  }

  function toParent(msg) {
    // Requests carry no secret; answers go to the client's origin when it is known.
    win.parent.postMessage(msg, parentOrigin || "*");
  }

  function askOpenID() {
    if (joining || attempts >= 20) {
      return;
    }
    attempts++;
    seq++;
    openidRequest = "switchboard-openid-" + seq;
    toParent({ api: "fromWidget", widgetId: widgetId, requestId: openidRequest, action: "get_openid", data: {} });
  }

  function join(cred) {
    if (joining || !cred || !cred.access_token) {
      return;
    }
    joining = true;
    status("Joining the meeting…");
    win.fetch(new URL("token", win.location.href).toString(), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: cred.access_token, matrix_server_name: cred.matrix_server_name, room_id: roomId }),
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (!resp.ok || typeof body.url !== "string") {
          status("You cannot join this meeting: " + (body.error || "refused") + ".");
          return;
        }
        win.location.replace(body.url);
      });
    }).catch(function () {
      joining = false;
      status("Switchboard could not be reached; reload the widget to try again.");
    });
  }

  if (!widgetId || !roomId) {
    status("This page runs as a widget in a Matrix client.");
    return;
  }
  win.addEventListener("message", function (ev) {
    var m = ev.data;
    if (ev.source !== win.parent || (parentOrigin && ev.origin !== parentOrigin)) {
      return;
    }
    if (!m || typeof m !== "object" || m.widgetId !== widgetId) {
      return;
    }
    if (m.api === "toWidget" && !m.response) {
      var answer = {};
      if (m.action === "capabilities") {
        answer = { capabilities: [] };
      } else if (m.action !== "notify_capabilities" && m.action !== "openid_credentials") {
        answer = { error: { message: "not supported by this widget" } };
      }
      toParent(Object.assign({}, m, { response: answer }));
      if (m.action === "capabilities" || m.action === "notify_capabilities") {
        win.setTimeout(askOpenID, 100);
      } else if (m.action === "openid_credentials") {
        if (m.data && m.data.state === "allowed") {
          join(m.data);
        } else {
          status("Your Matrix client did not share who you are: you cannot join.");
        }
      }
    } else if (m.api === "fromWidget" && m.requestId === openidRequest && m.response) {
      var r = m.response;
      if (r.state === "allowed") {
        join(r);
      } else if (r.state === "blocked") {
        status("Your Matrix client did not share who you are: you cannot join.");
      } else if (r.error) {
        win.setTimeout(askOpenID, 500); // the client was not ready yet
      } else {
        status("Please allow the widget to know who you are.");
      }
    }
  });
  status("Waiting for the Matrix client…");
})(window);
