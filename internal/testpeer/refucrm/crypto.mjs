// Switchboard's test bridge to the reference's own signing code (shared-js/crypto.js),
// called exactly as the reference UCRM calls it. Reads one JSON request on stdin:
//   {"op": "verify", "envelope": {... "signature": "..."}, "key": <public JWK>}
//   {"op": "sign", "envelope": {...}, "key": <private JWK>}
// and writes {"ok": true, "hash": "...", "signature": "..."} or {"ok": false, "error": "..."}.
import canonicalize from "canonicalize";
import sha3 from "js-sha3";
import * as jose from "jose";
import {UcrmError} from "./util/ucrmError.js";
import {init, getSigningHash, getEnvelopeSignature, verifyEnvelope} from "../../shared-js/crypto.js";

init(UcrmError, canonicalize, sha3, jose);

function out(o) {
  process.stdout.write(JSON.stringify(o));
}

let input = "";
for await (const chunk of process.stdin) {
  input += chunk;
}
try {
  const req = JSON.parse(input);
  const hash = getSigningHash(req.envelope);
  if (req.op === "verify") {
    await verifyEnvelope(req.envelope, req.envelope.signature, req.key);
    out({ok: true, hash});
  } else if (req.op === "sign") {
    out({ok: true, hash, signature: await getEnvelopeSignature(req.envelope, req.key)});
  } else {
    throw new Error(`unknown op ${req.op}`);
  }
} catch (err) {
  out({ok: false, error: String(err && err.message || err)});
}
