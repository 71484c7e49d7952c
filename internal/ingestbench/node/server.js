// The Node baseline of Switchboard's ingest benchmark (internal/ingestbench): matrix-org's
// matrix-appservice 2.0.0, acknowledging transactions from memory, counting the events it
// is handed by event ID. GET /count answers {"events": n, "distinct": m}.
//
// Usage: node server.js PORT HS_TOKEN (NODE_PATH names the node_modules directory).
"use strict";

const { AppService } = require("matrix-appservice");

const port = Number(process.argv[2]);
const homeserverToken = process.argv[3];
if (!port || !homeserverToken) {
	console.error("usage: node server.js PORT HS_TOKEN");
	process.exit(2);
}

const seen = new Set();
let events = 0;
const as = new AppService({ homeserverToken, httpMaxSizeBytes: 10 * 1024 * 1024 });
as.on("event", (ev) => {
	events++;
	seen.add(ev.event_id);
});
as.expressApp.get("/count", (_req, res) => {
	res.send({ events, distinct: seen.size });
});
process.on("SIGTERM", () => process.exit(0));
as.listen(port, "127.0.0.1").then(
	() => console.log(`listening on 127.0.0.1:${port}`),
	(err) => {
		console.error(err);
		process.exit(1);
	},
);
