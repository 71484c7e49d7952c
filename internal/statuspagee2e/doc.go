// Package statuspagee2e renders Switchboard's status page (GET /status on the ops listener)
// in a real browser, headless Chromium: a core with the management bot, the test module
// and a disconnected module, its page and JSON fetched over loopback, the page's visible
// text checked and a screenshot kept (under $SWITCHBOARD_ARTIFACTS, else the test's
// temporary directory). The homeserver is a small fake: the page only needs its versions
// endpoint. The tests live in _test files; this file only names the package.
package statuspagee2e
