package ucri

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// The PMeV reference implementation's signing code (shared-js/crypto.js, in the UCRI2
// material beside the repository) checks Switchboard's signatures and makes signatures
// Switchboard checks. It needs Node and the reference's three npm packages, installed once
// into a cache directory; without them the test is skipped, unless
// SWITCHBOARD_REQUIRE_PEERS=1.

// referenceCryptoDeps are the reference's crypto dependencies (its package.json ranges).
var referenceCryptoDeps = []string{"canonicalize@^2.1.0", "js-sha3@^0.9.3", "jose@^6.1.0"}

const interopScript = `
import canonicalize from "canonicalize";
import sha3 from "js-sha3";
import * as jose from "jose";
import {init, getSigningHash, verifyEnvelope, getEnvelopeSignature} from "./crypto.js";

class UcrmError extends Error { constructor(status, msg, code) { super(msg); this.code = code; } }
init(UcrmError, canonicalize, sha3, jose);
const input = JSON.parse(await new Promise(r => { let s = ""; process.stdin.on("data", d => s += d); process.stdin.on("end", () => r(s)); }));
const pub = await jose.importJWK(input.publicJwk, "RS256");
await verifyEnvelope(input.signed, input.signed.signature, pub); // throws when it does not verify
const priv = await jose.importJWK(input.privateJwk, "RS256");
const signature = await getEnvelopeSignature(input.unsigned, priv);
process.stdout.write(JSON.stringify({hash: getSigningHash(input.signed), signature}));
`

func requirePeers() bool { return os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" }

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if requirePeers() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// referenceCryptoDir returns a directory with crypto.js, its error codes and the npm
// packages it needs, installing them into the cache on first use.
func referenceCryptoDir(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../../../../shared/ucri2/reference-implementations/shared-js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "crypto.js")); err != nil {
		// Without ../shared (as on CI): the unchanged copy kept for the reference UCRM peer.
		src, _ = filepath.Abs("../../../internal/testpeer/refucrm/upstream/reference-implementations/shared-js")
	}
	if _, err := os.Stat(filepath.Join(src, "crypto.js")); err != nil {
		skipOrFail(t, "the reference's crypto.js is neither beside the repository nor in internal/testpeer/refucrm/upstream: %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		skipOrFail(t, "node is not installed: %v", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		skipOrFail(t, "no cache directory: %v", err)
	}
	dir := filepath.Join(cache, "switchboard", "ucri-reference-crypto")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose", "package.json")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			skipOrFail(t, "npm is not installed: %v", err)
		}
		tmp, err := os.MkdirTemp(filepath.Join(cache, "switchboard"), "ucri-reference-crypto-")
		if err != nil {
			skipOrFail(t, "cache: %v", err)
		}
		defer os.RemoveAll(tmp)
		if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(`{"private":true,"type":"module"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("npm", append([]string{"install", "--no-audit", "--no-fund", "--silent"}, referenceCryptoDeps...)...)
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			skipOrFail(t, "npm install failed: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
			if _, serr := os.Stat(filepath.Join(dir, "node_modules")); serr != nil {
				t.Fatal(err)
			}
		}
	}
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"crypto.js", "ucrmErrorCodes.js"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "package.json"), []byte(`{"private":true,"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "interop.js"), []byte(interopScript), 0o644); err != nil {
		t.Fatal(err)
	}
	return work
}

// TestReferenceCryptoInterop: the reference verifies a signature made by Sign (and computes
// the same hash), and Verify accepts a signature the reference made, for data with
// escapes, control characters and non-ASCII text.
func TestReferenceCryptoInterop(t *testing.T) {
	work := referenceCryptoDir(t)
	const dest = "1.2.3.4.5.7"
	env := testEnvelope()
	env.Payload.Data = "{\"cause\":\"Straße \\\"gesperrt\\\" \\\\ <&> \\u0001\\u2028 ünd 🚑\\n\"}"
	if err := Sign(env, dest, testKey()); err != nil {
		t.Fatal(err)
	}
	signed := SendRequest{Envelope: *env, Destinations: []string{dest}}
	unsigned := signed
	unsigned.Signature = ""
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: &testKey().PublicKey, Algorithm: "RS256"})
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: testKey(), Algorithm: "RS256"})
	input, _ := json.Marshal(map[string]any{
		"signed": signed, "unsigned": unsigned, "publicJwk": json.RawMessage(pubJWK), "privateJwk": json.RawMessage(privJWK),
	})
	cmd := exec.Command("node", "interop.js")
	cmd.Dir = work
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the reference refused Switchboard's signature: %v\n%s", err, stderr.String())
	}
	var got struct{ Hash, Signature string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reference output %q: %v", out, err)
	}
	if want := SigningHash(env, dest); got.Hash != want {
		t.Errorf("reference hash %s, Switchboard's %s", got.Hash, want)
	}
	theirs := *env
	theirs.Signature = got.Signature
	if err := Verify(&theirs, dest, &testKey().PublicKey); err != nil {
		t.Errorf("the reference's signature %s: %v", strings.SplitN(got.Signature, ".", 2)[0], err)
	}
}
