// The certificates of the egress proxy's TLS interception, checked by the TLS stacks that will read
// them: Node's TLS client against a real TLS server on 127.0.0.1 with full verification, and the
// openssl command line. A leaf verifies for its host under its own CA only; the issuer refuses CA
// material that is not a CA or whose key is not the certificate's; leaves are cached per host.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, test, type TestContext } from "node:test";
import tls from "node:tls";
import { promisify } from "node:util";
import { createInterceptionCa, LeafIssuer, type CaMaterial } from "../../src/egress/index.js";
import { tempDir } from "../helpers/repo.js";

const run = promisify(execFile);
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const CN = "KruxOS egress interception CA test-appliance";

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const caPromise = createInterceptionCa(CN);
const issuerPromise = caPromise.then((ca) => LeafIssuer.create(ca));

/** A TLS server on 127.0.0.1 presenting `leaf`; it answers "ok" and closes. */
async function serve(leaf: { certPem: string; keyPem: string }): Promise<number> {
  const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end("ok"));
  server.on("tlsClientError", () => {}); // clients that refuse our certificate are the point
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** Resolves with what the server said after a fully verified handshake; rejects otherwise. */
function handshake(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: true, ...opts });
    let said = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (said += d));
    socket.on("end", () => resolve(said));
    socket.on("error", reject);
    socket.on("secureConnect", () => assert.equal(socket.authorized, true));
  });
}

function code(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

const opensslMissing: Promise<string | undefined> = run("openssl", ["version"]).then(
  () => undefined,
  (err: unknown) => (err instanceof Error ? err.message : String(err)),
);

/** Skips the test (with the reason) when openssl is not installed; true when it can run. */
async function needOpenssl(t: TestContext): Promise<boolean> {
  const missing = await opensslMissing;
  if (missing !== undefined) t.skip(`openssl not found: ${missing}`);
  return missing === undefined;
}

test("a leaf verifies for its host name under the appliance CA and under nothing else", async () => {
  const ca = await caPromise;
  const leaf = await (await issuerPromise).leaf("api.example.test");
  const port = await serve(leaf);

  assert.equal(await handshake(port, { ca: ca.certPem, servername: "api.example.test" }), "ok");

  await assert.rejects(
    handshake(port, { ca: ca.certPem, servername: "other.example.test" }),
    (err) => code(err) === "ERR_TLS_CERT_ALTNAME_INVALID",
  );
  await assert.rejects(
    handshake(port, { servername: "api.example.test" }), // Node's default root CAs only
    (err) => code(err) === "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  );
});

test("an IP literal gets an iPAddress SAN that verifies for that address", async () => {
  const ca = await caPromise;
  const issuer = await issuerPromise;
  const leaf = await issuer.leaf("127.0.0.1");
  const port = await serve(leaf);
  // No servername: SNI never carries an address, so Node checks the host against the IP SANs.
  assert.equal(await handshake(port, { ca: ca.certPem }), "ok");

  const x = new X509Certificate(leaf.certPem);
  assert.equal(x.subjectAltName, "IP Address:127.0.0.1");
  assert.equal(x.subject, "CN=127.0.0.1");
  assert.equal(x.checkIP("127.0.0.1"), "127.0.0.1");
  assert.equal(x.checkIP("127.0.0.2"), undefined);

  const v6 = new X509Certificate((await issuer.leaf("0:0:0:0:0:0:0:1")).certPem);
  assert.equal(v6.checkIP("::1"), "::1");
  assert.equal(v6.subject, "CN=::1", "IPv6 is named in its canonical text");
  const mapped = new X509Certificate((await issuer.leaf("::ffff:192.0.2.7")).certPem);
  assert.equal(mapped.subjectAltName, "IP Address:0:0:0:0:0:FFFF:C000:207");
});

test("the CA and its leaves carry the extensions TLS clients check", async () => {
  const now = new Date("2026-03-01T12:00:00Z");
  const ca = await createInterceptionCa(CN, now);
  const issuer = await LeafIssuer.create(ca, { now: () => now });
  const caX = new X509Certificate(ca.certPem);
  const leafX = new X509Certificate((await issuer.leaf("Api.Example.TEST")).certPem);

  assert.equal(caX.subject, `CN=${CN}`);
  assert.equal(caX.ca, true);
  assert.equal(new Date(caX.validFrom).toISOString(), "2026-03-01T11:00:00.000Z");
  assert.equal(new Date(caX.validTo).toISOString(), "2036-03-01T12:00:00.000Z");
  assert.equal(caX.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");

  assert.equal(leafX.subject, "CN=api.example.test", "names are lower-cased");
  assert.equal(leafX.subjectAltName, "DNS:api.example.test");
  assert.equal(leafX.issuer, caX.subject);
  assert.equal(leafX.ca, false);
  assert.deepEqual(leafX.keyUsage, ["1.3.6.1.5.5.7.3.1"], "EKU serverAuth only");
  assert.equal(new Date(leafX.validFrom).toISOString(), "2026-03-01T11:00:00.000Z");
  assert.equal(new Date(leafX.validTo).toISOString(), "2026-03-08T12:00:00.000Z");
  assert.equal(leafX.checkIssued(caX), true);
  assert.equal(leafX.verify(caX.publicKey), true);

  for (const x of [caX, leafX]) {
    // 128 random bits, positive: 16 octets, or 17 with the leading 00 when the top bit is set.
    const serial = x.serialNumber.replace(/^00/, "");
    assert.ok(serial.length >= 28 && serial.length <= 32, serial);
  }
  assert.notEqual(caX.serialNumber, leafX.serialNumber);
});

test("openssl verifies the leaf against the CA and reads CA:TRUE, pathlen:0", async (t) => {
  if (!(await needOpenssl(t))) return;
  const ca = await caPromise;
  const leaf = await (await issuerPromise).leaf("api.example.test");
  const { dir, cleanup } = tempDir("kruxos-interception-ca-");
  cleanups.push(cleanup);
  const caFile = path.join(dir, "ca.pem");
  const leafFile = path.join(dir, "leaf.pem");
  writeFileSync(caFile, ca.certPem);
  writeFileSync(leafFile, leaf.certPem);

  const verified = await run("openssl", [
    "verify",
    "-x509_strict",
    "-purpose",
    "sslserver",
    "-CAfile",
    caFile,
    leafFile,
  ]);
  assert.equal(verified.stdout.trim(), `${leafFile}: OK`);

  const caText = (await run("openssl", ["x509", "-noout", "-text", "-in", caFile])).stdout;
  assert.match(caText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  assert.match(caText, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  assert.match(caText, /X509v3 Subject Key Identifier:/);
  assert.match(caText, /Signature Algorithm: ecdsa-with-SHA256/);

  const leafText = (await run("openssl", ["x509", "-noout", "-text", "-in", leafFile])).stdout;
  assert.match(leafText, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(leafText, /X509v3 Basic Constraints:\s+CA:FALSE/);
  assert.match(leafText, /X509v3 Authority Key Identifier:/);
});

// Same subject name as the first CA: only the signature tells the two apart.
const foreignPromise = createInterceptionCa(CN)
  .then((other) => LeafIssuer.create(other))
  .then((other) => other.leaf("api.example.test"));

test("a leaf signed by another CA does not verify against this one", async () => {
  const ca = await caPromise;
  const foreign = await foreignPromise;
  assert.equal(
    new X509Certificate(foreign.certPem).verify(new X509Certificate(ca.certPem).publicKey),
    false,
  );
  const port = await serve(foreign);
  await assert.rejects(
    handshake(port, { ca: ca.certPem, servername: "api.example.test" }),
    (err) => code(err) === "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  );
});

test("openssl refuses a leaf signed by another CA", async (t) => {
  if (!(await needOpenssl(t))) return;
  const { dir, cleanup } = tempDir("kruxos-interception-ca-");
  cleanups.push(cleanup);
  writeFileSync(path.join(dir, "ca.pem"), (await caPromise).certPem);
  writeFileSync(path.join(dir, "leaf.pem"), (await foreignPromise).certPem);
  await assert.rejects(
    run("openssl", ["verify", "-CAfile", path.join(dir, "ca.pem"), path.join(dir, "leaf.pem")]),
    (err) =>
      /unable to get local issuer certificate/.test(String((err as { stderr?: unknown }).stderr)),
  );
});

test("the issuer refuses a CA key that is not the certificate's, and a certificate that is no CA", async () => {
  const ca = await caPromise;
  const other = await createInterceptionCa(CN);
  await assert.rejects(LeafIssuer.create({ certPem: ca.certPem, keyPem: other.keyPem }), {
    message: "the CA private key does not belong to the CA certificate",
  });

  const leaf = await (await issuerPromise).leaf("api.example.test");
  await assert.rejects(LeafIssuer.create(leaf), /is not a CA certificate/);
  await assert.rejects(
    LeafIssuer.create({ certPem: "not a certificate", keyPem: ca.keyPem }),
    /the CA certificate does not parse/,
  );
  await assert.rejects(
    LeafIssuer.create({ certPem: ca.certPem, keyPem: "not a key" }),
    /the CA private key does not parse/,
  );
  const expired = await createInterceptionCa(CN, new Date(Date.now() - 11 * 365 * DAY));
  await assert.rejects(LeafIssuer.create(expired), /the CA certificate expired at /);
});

test("leaves are cached per host: same object, one issuance for concurrent calls, LRU eviction", async () => {
  const ca = await caPromise;
  const issuer = await LeafIssuer.create(ca, { maxEntries: 2 });

  const a = await issuer.leaf("a.example.test");
  assert.equal(await issuer.leaf("a.example.test"), a);
  assert.equal(await issuer.leaf("A.EXAMPLE.test"), a, "the cache key is the lower-cased name");

  const concurrent = Array.from({ length: 8 }, () => issuer.leaf("b.example.test"));
  assert.ok(
    concurrent.every((p) => p === concurrent[0]),
    "concurrent calls share one promise",
  );
  const b = await concurrent[0];
  assert.ok(b);
  assert.equal(b.keyPem, a.keyPem, "one leaf key pair per issuer");
  assert.notEqual(b.certPem, a.certPem);

  assert.equal(await issuer.leaf("a.example.test"), a); // a is now the most recently used
  await issuer.leaf("c.example.test"); // a third host: b goes
  assert.equal(await issuer.leaf("a.example.test"), a);
  const b2 = await issuer.leaf("b.example.test");
  assert.notEqual(b2, b, "an evicted host gets a new leaf");
  assert.notEqual(b2.certPem, b.certPem);
});

test("a cached leaf with less than a day left is reissued", async () => {
  let now = Date.now();
  const issuer = await LeafIssuer.create(await caPromise, {
    validityDays: 7,
    now: () => new Date(now),
  });
  const first = await issuer.leaf("api.example.test");
  now += 6 * DAY - HOUR; // a day and an hour left
  assert.equal(await issuer.leaf("api.example.test"), first);
  now += 2 * HOUR; // 23 hours left
  const second = await issuer.leaf("api.example.test");
  assert.notEqual(second, first);
  assert.equal(
    Date.parse(new X509Certificate(second.certPem).validTo),
    Math.floor((now + 7 * DAY) / 1000) * 1000,
  );
  assert.equal(await issuer.leaf("api.example.test"), second);
});

test("hosts a certificate must not name are refused with a RangeError", async () => {
  const issuer = await issuerPromise;
  for (const host of [
    "",
    `${"a.".repeat(126)}ab`, // 254 characters
    "api.example.test:443",
    "[::1]",
    "*.example.test",
    "api example.test",
    "api_x.example.test",
    "exämple.test",
    "api.example.test\n",
    "a..example.test",
    ".example.test",
    "example.test.",
    `${"a".repeat(64)}.example.test`,
    "127.1",
    "10.0.0.010",
    "fe80::1%eth0",
  ]) {
    await assert.rejects(issuer.leaf(host), RangeError, JSON.stringify(host));
  }
  await assert.rejects(createInterceptionCa(""), RangeError);
  await assert.rejects(LeafIssuer.create(await caPromise, { validityDays: 1 }), RangeError);
  await assert.rejects(LeafIssuer.create(await caPromise, { maxEntries: 0 }), RangeError);
});

test("the CA key comes out as PKCS#8 PEM and the CA certificate as PEM", async () => {
  const ca: CaMaterial = await caPromise;
  assert.match(ca.certPem, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
  assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
});
