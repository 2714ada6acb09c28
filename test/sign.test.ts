// Signing with the project, end to end through the `gadget` command: key pairs in cosign's
// format, the three signature formats (cosign legacy `.sig`, Sigstore bundle referrer,
// notation JWS) with a generated key and with cosign's own fixture key, verification, a push
// to the real docker-registry and a pull into an empty store verified offline (the registry
// stopped first), wrong keys and tampered payloads, and an independent check of the bundles
// with Sigstore's JavaScript verifier. Keys and certificates beyond the fixture are made
// with openssl here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPublicKey } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { digestHex } from '../lib/oci/digest.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { MT_MANIFEST, SIGSTORE_BUNDLE } from '../lib/oci/mediatypes.js';
import type { Descriptor, Manifest } from '../lib/oci/types.js';
import { loadSigningKey } from '../lib/signature/private-keys.js';
import { openStore } from '../store/store.js';
import { copyGraph } from '../lib/oci/copy.js';
import { gadget } from './helpers/cli.js';
import { REPO, SHARED, scratch } from './helpers/paths.js';
import { registryAvailable, startRegistry, type TestRegistry } from './helpers/registry.js';

const FIXTURE_KEY = join(SHARED, 'fixtures', 'cosign-key', 'cosign-empty-password.key');
const HAVE_FIXTURE_KEY = existsSync(FIXTURE_KEY);
const dir = scratch('gadget-sign-');
const PASSWORD = { COSIGN_PASSWORD: 'correct horse' };
const IMAGE = 'localhost:5000/gadgets/trace_open:v1';

const f = (name: string): string => join(dir, name);
const openssl = (...args: string[]): string => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8' });

/** A fresh store holding the trace_open example, built by the project; returns the store and index digest. */
async function builtStore(name: string): Promise<{ store: string; digest: string }> {
  const store = f(name);
  const built = await gadget(['--store', store, 'build', join(REPO, 'examples', 'trace_open'), '-t', IMAGE, '--json']);
  assert.equal(built.code, 0, built.stderr);
  const listed = JSON.parse((await gadget(['--store', store, 'list', '--json'])).stdout) as Array<{ ref: string; digest: string }>;
  return { store, digest: listed.find((i) => i.ref === IMAGE)!.digest };
}

async function verifyJSON(store: string, ...args: string[]): Promise<{ code: number | null; report: { images: Array<{ passed: boolean; findings: Array<{ rule: string; message: string }>; signature?: { found: Array<{ kind: string; ok: boolean }> } }> } }> {
  const run = await gadget(['--store', store, 'verify', IMAGE, '--require-signature', '--json', ...args]);
  return { code: run.code, report: JSON.parse(run.stdout) };
}

before(() => {
  // A second cosign key (for "wrong key"), keys in the plain PEM forms, and a notation CA
  // with a code-signing leaf (notation needs C, ST and O in the subject, the codeSigning EKU).
  openssl('ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'ec-sec1.pem');
  openssl('pkcs8', '-topk8', '-nocrypt', '-in', 'ec-sec1.pem', '-out', 'ec-pkcs8.pem');
  openssl('genpkey', '-algorithm', 'ed25519', '-out', 'ed25519.pem');
  openssl('ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'other.pem');
  for (const k of ['ec-sec1', 'ed25519', 'other']) openssl('pkey', '-in', `${k}.pem`, '-pubout', '-out', `${k}.pub`);
  const subject = '/C=US/ST=WA/O=Gadget Test';
  for (const ca of ['ca', 'other-ca']) {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '30',
      '-subj', `${subject}/CN=${ca}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `${subject}/CN=gadget signer`);
  writeFileSync(f('leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n');
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '30', '-extfile', 'leaf.ext', '-out', 'leaf.crt');
  writeFileSync(f('chain.pem'), readFileSync(f('leaf.crt'), 'utf8') + readFileSync(f('ca.crt'), 'utf8'));
});

test('generate-key-pair writes cosign\'s encrypted key (mode 0600) and public key, and never overwrites', async () => {
  const made = await gadget(['generate-key-pair', '--output-key-prefix', f('cosign')], { env: PASSWORD });
  assert.equal(made.code, 0, made.stderr);
  const pem = readFileSync(f('cosign.key'), 'utf8');
  assert.match(pem, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
  const doc = JSON.parse(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('utf8'));
  assert.deepEqual(doc.kdf.params, { N: 65536, r: 8, p: 1 });
  assert.equal(doc.kdf.name, 'scrypt');
  assert.equal(doc.cipher.name, 'nacl/secretbox');
  assert.equal(Buffer.from(doc.cipher.nonce, 'base64').length, 24);
  assert.equal(statSync(f('cosign.key')).mode & 0o777, 0o600);
  assert.match(readFileSync(f('cosign.pub'), 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);

  const key = await loadSigningKey(f('cosign.key'), async () => PASSWORD.COSIGN_PASSWORD);
  assert.equal(key.publicKey.export({ type: 'spki', format: 'pem' }), readFileSync(f('cosign.pub'), 'utf8'));
  await assert.rejects(loadSigningKey(f('cosign.key'), async () => 'wrong'), /the password is wrong/);

  const again = await gadget(['generate-key-pair', '--output-key-prefix', f('cosign')], { env: PASSWORD });
  assert.equal(again.code, 2);
  assert.match(again.stderr, /^error: .*cosign\.key already exists/m);
  assert.equal(readFileSync(f('cosign.key'), 'utf8'), pem, 'the existing key is untouched');
  const noPassword = await gadget(['generate-key-pair', '--output-key-prefix', f('nopw')], { env: { COSIGN_PASSWORD: undefined } });
  assert.equal(noPassword.code, 2);
  assert.match(noPassword.stderr, /COSIGN_PASSWORD/);
  assert.equal(existsSync(f('nopw.key')), false);
});

test('a key given as its text instead of a path is refused without being repeated, in any output mode', async () => {
  const { store } = await builtStore('pasted');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'pasted.key');
  const pem = readFileSync(f('pasted.key'), 'utf8');
  const secret = pem.split('\n')[1]!; // a line of the key's base64
  const body = pem.split('\n').filter((l) => !l.startsWith('-----')).join(''); // the base64 alone, on one line
  // Also from a folder whose path is not all base64 (this test's own, with '-'): the value is
  // judged as given, not once it is part of a path.
  for (const [flag, text, cwd] of [['--key', pem, REPO], ['--notation-key', pem, REPO], ['--key', body, REPO], ['--key', body, dir], ['--notation-key', body, dir]] as const) {
    for (const mode of [[], ['--json'], ['-v']]) {
      const r = await gadget(['--store', store, ...mode, 'sign', IMAGE, flag, text, ...(flag === '--notation-key' ? ['--notation-cert', f('pasted.key')] : [])], { env: PASSWORD, cwd });
      assert.equal(r.code, 2, `${flag} ${mode.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout + r.stderr, /the signing key was given as its text, not as the path of a file/);
      for (const out of [r.stdout, r.stderr]) {
        assert.ok(!out.includes(secret) && !out.includes('PRIVATE KEY'), `${flag} ${mode.join(' ')}: the key is not in the output`);
      }
    }
  }
});

test('sign refuses, naming each, references that name no image and images whose content is not all there; it signs nothing then', async () => {
  const { store, digest } = await builtStore('damaged');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'damaged.key');
  const missing = await gadget(['--store', store, 'sign', 'example.com/nope:1', IMAGE, 'example.com/nope:2', '--key', f('damaged.key')]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /^error: nothing was signed: example\.com\/nope:1 is not in store [^;]*; example\.com\/nope:2 is not in store/m);
  const s = await openStore(store);
  const child = (await s.readJSON<{ manifests: Descriptor[] }>(s.resolveRef(IMAGE))).manifests[0]!;
  s.close();
  rmSync(join(store, 'blobs', 'sha256', digestHex(child.digest)));
  const damaged = await gadget(['--store', store, '--json', 'sign', IMAGE, '--key', f('damaged.key')]);
  assert.equal(damaged.code, 1, damaged.stderr);
  assert.match(JSON.parse(damaged.stdout).error.message, new RegExp(`nothing was signed: the content of ${IMAGE.replace(/[./]/g, '\\$&')} \\(${digest}\\) is not all in store .*: ${child.digest} is missing`));
  const after = await openStore(store);
  assert.throws(() => after.resolveRef(`sha256-${digestHex(digest)}.sig`), /is not in store/, 'no signature was made');
  after.close();

  // Bytes damaged in place (the same size): a signature would vouch for them, so none is made.
  const { store: other, digest: otherDigest } = await builtStore('damaged-bytes');
  const o = await openStore(other);
  const manifest = (await o.readJSON<{ manifests: Descriptor[] }>(o.resolveRef(IMAGE))).manifests[0]!;
  const layer = (await o.readJSON<Manifest>(manifest)).layers[0]!;
  o.close();
  const file = join(other, 'blobs', 'sha256', digestHex(layer.digest));
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] ^= 0xff;
  writeFileSync(file, bytes);
  const flipped = await gadget(['--store', other, 'sign', IMAGE, '--key', f('damaged.key')]);
  assert.equal(flipped.code, 1, flipped.stderr);
  assert.match(flipped.stderr, new RegExp(`nothing was signed: the content of .* is damaged in store .*: ${layer.digest} does not match its digest`));
  const unsigned = await openStore(other);
  assert.throws(() => unsigned.resolveRef(`sha256-${digestHex(otherDigest)}.sig`), /is not in store/, 'no signature was made');
  unsigned.close();

  // A damaged layer of the existing .sig manifest: appending to it would list the damage.
  const { store: third, digest: thirdDigest } = await builtStore('damaged-signature');
  assert.equal((await gadget(['--store', third, 'sign', IMAGE, '--key', f('damaged.key')])).code, 0);
  const t3 = await openStore(third);
  const sigTag = `sha256-${digestHex(thirdDigest)}.sig`;
  const before = t3.resolveRef(sigTag).digest;
  const sigLayer = (await t3.readJSON<Manifest>(t3.resolveRef(sigTag))).layers[0]!;
  t3.close();
  const sigFile = join(third, 'blobs', 'sha256', digestHex(sigLayer.digest));
  const sigBytes = readFileSync(sigFile);
  sigBytes[0] ^= 0xff;
  writeFileSync(sigFile, sigBytes);
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'second.key');
  const again = await gadget(['--store', third, 'sign', IMAGE, '--key', f('second.key')]);
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, new RegExp(`the signature ${sigTag} in store .* is damaged \\(${sigLayer.digest} does not match its digest\\); nothing was signed`));
  const t4 = await openStore(third);
  assert.equal(t4.resolveRef(sigTag).digest, before, 'the .sig tag did not move');
  t4.close();

  // With the damaged .sig untagged, signing again writes its payload (the same bytes) whole again.
  assert.equal((await gadget(['--store', third, 'rm', sigTag])).code, 0);
  assert.equal((await gadget(['--store', third, 'sign', IMAGE, '--key', f('damaged.key')])).code, 0);
  openssl('pkey', '-in', 'damaged.key', '-pubout', '-out', 'damaged.pub');
  const healed = await verifyJSON(third, '--key', f('damaged.pub'));
  assert.equal(healed.code, 0, JSON.stringify(healed.report));
  assert.equal((await gadget(['--store', third, 'fsck'])).code, 0, 'the payload blob was written again, whole');
});

test('reading keys: cosign\'s fixture key (empty password), PKCS#8, SEC1 EC and ed25519 PEM', { skip: !HAVE_FIXTURE_KEY && 'fixtures absent' }, async () => {
  const fixture = await loadSigningKey(FIXTURE_KEY, async () => '');
  writeFileSync(f('fixture.pub'), fixture.publicKey.export({ type: 'spki', format: 'pem' }));
  await assert.rejects(loadSigningKey(FIXTURE_KEY, async () => 'not empty'), /password is wrong/);
  const { store } = await builtStore('keys-store');
  const cases: Array<[string, string]> = [[FIXTURE_KEY, f('fixture.pub')], [f('ec-pkcs8.pem'), f('ec-sec1.pub')], [f('ec-sec1.pem'), f('ec-sec1.pub')], [f('ed25519.pem'), f('ed25519.pub')]];
  for (const [keyFile, pub] of cases) {
    const signed = await gadget(['--store', store, 'sign', IMAGE, '--key', keyFile], { env: { COSIGN_PASSWORD: '' } });
    assert.equal(signed.code, 0, `${keyFile}: ${signed.stderr}`);
    const { code } = await verifyJSON(store, '--key', pub);
    assert.equal(code, 0, `${keyFile} verifies with ${pub}`);
  }
  const pub = await gadget(['--store', store, 'sign', IMAGE, '--key', f('ec-sec1.pub')]);
  assert.equal(pub.code, 2);
  assert.match(pub.stderr, /not a private key/);
});

test('legacy .sig: sign, verify, same key twice is idempotent, another key appends, wrong key and tampered payload fail', { skip: !HAVE_FIXTURE_KEY && 'fixtures absent' }, async () => {
  const { store, digest } = await builtStore('legacy-store');
  const first = await gadget(['--store', store, 'sign', IMAGE, '--key', f('cosign.key'), '--annotation', 'org.example.build=42', '--json'], { env: PASSWORD });
  assert.equal(first.code, 0, first.stderr);
  const [signed] = JSON.parse(first.stdout).signatures;
  assert.equal(signed.digest, digest, 'the index digest is signed');
  assert.equal(signed.format, 'legacy');
  const twice = JSON.parse((await gadget(['--store', store, 'sign', IMAGE, '--key', f('cosign.key'), '--annotation', 'org.example.build=42', '--json'], { env: PASSWORD })).stdout).signatures[0];
  assert.deepEqual({ action: twice.action, signature: twice.signature }, { action: 'unchanged', signature: signed.signature });
  assert.equal((await verifyJSON(store, '--key', f('cosign.pub'))).code, 0);

  const second = await gadget(['--store', store, 'sign', IMAGE, '--key', FIXTURE_KEY], { env: { COSIGN_PASSWORD: '' } });
  assert.equal(second.code, 0, second.stderr);
  const s = await openStore(store);
  try {
    const sig = s.resolveRef(`sha256-${digestHex(digest)}.sig`);
    const manifest = await s.readJSON<Manifest>(sig);
    assert.equal(manifest.layers.length, 2, 'a second signature is appended, the first kept');
    const payload = JSON.parse((await s.readBytes(manifest.layers[0]!)).toString('utf8'));
    assert.equal(payload.critical.image['docker-manifest-digest'], digest);
    assert.deepEqual(payload.optional, { 'org.example.build': '42' });
  } finally {
    s.close();
  }
  assert.equal((await verifyJSON(store, '--key', f('cosign.pub'))).code, 0, 'the first key still verifies');
  assert.equal((await verifyJSON(store, '--key', f('fixture.pub'))).code, 0, 'the second key verifies');
  const wrong = await verifyJSON(store, '--key', f('other.pub'));
  assert.equal(wrong.code, 1);
  assert.equal(wrong.report.images[0]!.findings[0]!.rule, 'GADGET-SIGNATURE-INVALID');

  // Tampered: a payload naming another repository, under the original signatures.
  const t = await openStore(store);
  try {
    const tag = `sha256-${digestHex(digest)}.sig`;
    const manifest = await t.readJSON<Manifest>(t.resolveRef(tag));
    const layers: Descriptor[] = [];
    for (const layer of manifest.layers) {
      const bytes = Buffer.from((await t.readBytes(layer)).toString('utf8').replace('gadgets/trace_open', 'gadgets/evil_open'));
      layers.push({ ...(await t.putBytes(bytes, layer.mediaType)), annotations: layer.annotations });
    }
    await t.tag(await t.putBytes(encodeJSONBytes({ ...manifest, layers }), MT_MANIFEST), tag);
  } finally {
    t.close();
  }
  const tampered = await verifyJSON(store, '--key', f('cosign.pub'), '--key', f('fixture.pub'));
  assert.equal(tampered.code, 1);
  assert.equal(tampered.report.images[0]!.findings[0]!.rule, 'GADGET-SIGNATURE-INVALID');
});

test('two processes signing one store at once never lose a signature', async () => {
  const { store } = await builtStore('race-store');
  const keys: Array<[string, string]> = [[f('ec-pkcs8.pem'), f('ec-sec1.pub')], [f('ed25519.pem'), f('ed25519.pub')], [f('other.pem'), f('other.pub')]];
  const runs = await Promise.all(keys.map(([key]) => gadget(['--store', store, 'sign', IMAGE, '--key', key])));
  for (const [i, run] of runs.entries()) {
    // Each either signed, or refused because another process moved the tag meanwhile.
    if (run.code !== 0) {
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /changed by another program meanwhile/);
      continue;
    }
    assert.equal((await verifyJSON(store, '--key', keys[i]![1])).code, 0, `${keys[i]![0]} signed and its signature is kept`);
  }
  assert.ok(runs.some((r) => r.code === 0));
});

/** @sigstore/verify, independently: the bundle against a trust material holding only this key. */
function sigstoreVerifies(bundleJSON: unknown, pubFile: string): boolean {
  const spki = createPublicKey(readFileSync(pubFile, 'utf8')).export({ type: 'spki', format: 'der' });
  const root = TrustedRoot.fromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] });
  const material = toTrustMaterial(root, (hint: string) => ({ publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }), validFor: () => hint.length > 0 }));
  try {
    new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundleFromJSON(bundleJSON)));
    return true;
  } catch {
    return false;
  }
}

test('bundle: a Sigstore bundle v0.3 referrer that the project and @sigstore/verify both accept; idempotent; wrong key and tampering fail', { skip: !HAVE_FIXTURE_KEY && 'fixtures absent' }, async () => {
  const { store, digest } = await builtStore('bundle-store');
  for (const [key, env] of [[f('cosign.key'), PASSWORD], [FIXTURE_KEY, { COSIGN_PASSWORD: '' }]] as const) {
    const signed = await gadget(['--store', store, 'sign', IMAGE, '--key', key, '--format', 'bundle', '--annotation', 'org.example.team=net'], { env });
    assert.equal(signed.code, 0, signed.stderr);
  }
  const again = JSON.parse((await gadget(['--store', store, 'sign', IMAGE, '--key', f('cosign.key'), '--format', 'bundle', '--annotation', 'org.example.team=net', '--json'], { env: PASSWORD })).stdout);
  assert.equal(again.signatures[0].action, 'unchanged');

  const s = await openStore(store);
  let bundles: unknown[] = [];
  let referrers: Descriptor[] = [];
  try {
    referrers = (await s.referrers({ mediaType: '', digest, size: 0 })).map((r) => r.descriptor).filter((d) => d.artifactType === SIGSTORE_BUNDLE);
    assert.equal(referrers.length, 2, 'one referrer per key; the repeated signing added none');
    for (const r of referrers) {
      const manifest = await s.readJSON<Manifest>(r);
      assert.equal(manifest.subject?.digest, digest);
      assert.equal(manifest.annotations?.['org.example.team'], 'net');
      const bundle = JSON.parse((await s.readBytes(manifest.layers[0]!)).toString('utf8'));
      assert.equal(bundle.mediaType, SIGSTORE_BUNDLE);
      assert.equal(bundle.dsseEnvelope.signatures.length, 1);
      const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
      assert.equal(statement.subject[0].digest.sha256, digestHex(digest));
      bundles.push(bundle);
    }
  } finally {
    s.close();
  }
  assert.equal((await verifyJSON(store, '--key', f('cosign.pub'))).code, 0);
  assert.equal((await verifyJSON(store, '--key', f('fixture.pub'))).code, 0);
  // Independent check: Sigstore's verifier accepts each bundle with its own key only.
  assert.deepEqual(bundles.map((b) => [sigstoreVerifies(b, f('cosign.pub')), sigstoreVerifies(b, f('fixture.pub'))]).sort(), [[false, true], [true, false]]);
  assert.equal(bundles.some((b) => sigstoreVerifies(b, f('other.pub'))), false);
  const wrong = await verifyJSON(store, '--key', f('other.pub'));
  assert.equal(wrong.code, 1);
  assert.equal(wrong.report.images[0]!.findings[0]!.rule, 'GADGET-SIGNATURE-INVALID');

  // gadget verify-blob takes the same bundle over a file whose digest is the image's: the index.
  const t = await openStore(store);
  const tamperedStore = await openStore(f('bundle-tampered-store'));
  try {
    writeFileSync(f('index.json.blob'), await t.readBytes(digest));
    writeFileSync(f('image.sigstore.json'), JSON.stringify(bundles.find((b) => sigstoreVerifies(b, f('cosign.pub')))));
    // Tampered, in a store of its own holding the image and only the tampered referrers:
    // each statement names another digest, the signature is kept.
    await copyGraph(t, tamperedStore, t.resolveRef(IMAGE), [IMAGE]);
    for (const r of referrers) {
      const manifest = await t.readJSON<Manifest>(r);
      const bundle = JSON.parse((await t.readBytes(manifest.layers[0]!)).toString('utf8'));
      const statement = Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8').replace(digestHex(digest), 'f'.repeat(64));
      bundle.dsseEnvelope.payload = Buffer.from(statement).toString('base64');
      const layer = await tamperedStore.putBytes(Buffer.from(JSON.stringify(bundle)), SIGSTORE_BUNDLE);
      await tamperedStore.putBytes(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
      await tamperedStore.putBytes(encodeJSONBytes({ ...manifest, layers: [layer] }), MT_MANIFEST);
    }
  } finally {
    t.close();
    tamperedStore.close();
  }
  const blob = await gadget(['verify-blob', f('index.json.blob'), '--bundle', f('image.sigstore.json'), '--key', f('cosign.pub'), '--json']);
  assert.equal(blob.code, 0, blob.stdout + blob.stderr);
  writeFileSync(f('other.blob'), 'not the image');
  const mismatch = await gadget(['verify-blob', f('other.blob'), '--bundle', f('image.sigstore.json'), '--key', f('cosign.pub'), '--json']);
  assert.equal(mismatch.code, 1);
  assert.equal(JSON.parse(mismatch.stdout).rule, 'GADGET-SIGNATURE-DIGEST');
  const tampered = await verifyJSON(f('bundle-tampered-store'), '--key', f('cosign.pub'), '--key', f('fixture.pub'));
  assert.equal(tampered.code, 1);
  assert.deepEqual(tampered.report.images[0]!.signature!.found.map((x) => `${x.kind}:${x.ok}`), ['cosign-bundle:false', 'cosign-bundle:false']);
  // The signature covers the statement: a changed statement no longer verifies.
  assert.equal(tampered.report.images[0]!.findings[0]!.rule, 'GADGET-SIGNATURE-INVALID');
  assert.match(tampered.report.images[0]!.findings[0]!.message, /does not verify/);
});

test('notation: a JWS signature from an openssl-made CA and code-signing leaf verifies with --notation-cert; another CA fails', async () => {
  const { store } = await builtStore('notation-store');
  const signed = await gadget(['--store', store, 'sign', IMAGE, '--notation-key', f('leaf.key'), '--notation-cert', f('chain.pem'), '--json']);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(JSON.parse(signed.stdout).signatures[0].format, 'notation');
  const good = await verifyJSON(store, '--notation-cert', f('ca.crt'));
  assert.equal(good.code, 0, JSON.stringify(good.report));
  assert.deepEqual(good.report.images[0]!.signature!.found.map((x) => [x.kind, x.ok]), [['notation', true]]);
  const other = await verifyJSON(store, '--notation-cert', f('other-ca.crt'));
  assert.equal(other.code, 1);
  assert.match(other.report.images[0]!.findings[0]!.message, /does not lead to the given trusted certificate/);
  const mismatch = await gadget(['--store', store, 'sign', IMAGE, '--notation-key', f('other.pem'), '--notation-cert', f('chain.pem')]);
  assert.equal(mismatch.code, 2);
  assert.match(mismatch.stderr, /is not the certificate of the notation key/);
});

test('notation: a certificate issued by a code-signing leaf (CA:FALSE) does not verify, whatever subject it claims', async () => {
  // A leaf without keyUsage passes OpenSSL's issuer check (names, key ids, keyUsage): only its
  // basicConstraints say it may not issue certificates.
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'eve.key', '-out', 'eve.csr', '-subj', '/C=US/ST=WA/O=Gadget Test/CN=eve');
  writeFileSync(f('eve.ext'), 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=codeSigning\n');
  openssl('x509', '-req', '-in', 'eve.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '3', '-days', '30', '-extfile', 'eve.ext', '-out', 'eve.crt');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'forged.key', '-out', 'forged.csr', '-subj', '/C=US/ST=WA/O=Victim Corp/CN=release');
  writeFileSync(f('forged.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n');
  openssl('x509', '-req', '-in', 'forged.csr', '-CA', 'eve.crt', '-CAkey', 'eve.key', '-set_serial', '4', '-days', '30', '-extfile', 'forged.ext', '-out', 'forged.crt');
  writeFileSync(f('forged-chain.pem'), ['forged.crt', 'eve.crt', 'ca.crt'].map((n) => readFileSync(f(n), 'utf8')).join(''));
  assert.throws(() => openssl('verify', '-CAfile', 'ca.crt', '-untrusted', 'eve.crt', 'forged.crt'), 'openssl refuses the chain too');

  const { store } = await builtStore('notation-forged-store');
  const signed = await gadget(['--store', store, 'sign', IMAGE, '--notation-key', f('forged.key'), '--notation-cert', f('forged-chain.pem')]);
  assert.equal(signed.code, 0, signed.stderr);
  const forged = await verifyJSON(store, '--notation-cert', f('ca.crt'));
  assert.equal(forged.code, 1, JSON.stringify(forged.report));
  assert.equal(forged.report.images[0]!.findings[0]!.rule, 'GADGET-SIGNATURE-INVALID');
  assert.match(forged.report.images[0]!.findings[0]!.message, /O=Gadget Test.*eve.* is not a certificate authority|eve.*is not a certificate authority/);
});

test('notation: a CA as the signing certificate, a chain longer than a pathLenConstraint allows, and a leaf without digitalSignature do not verify', async () => {
  const subject = '/C=US/ST=WA/O=Gadget Test';
  const key = (name: string): void => void openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `${subject}/CN=${name}`);
  const issue = (name: string, by: string, ext: string, serial: number): void => {
    writeFileSync(f(`${name}.ext`), ext);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${by}.crt`, '-CAkey', `${by}.key`, '-set_serial', String(serial), '-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  };
  const CA = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
  const LEAF = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n';
  // A sub-CA signing directly (its only extended usage TLS).
  key('subca');
  issue('subca', 'ca', `${CA}extendedKeyUsage=serverAuth\n`, 10);
  // ca -> inta (pathlen 0) -> intb (CA) -> leafb: one CA too many below inta.
  key('inta');
  issue('inta', 'ca', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n', 11);
  key('intb');
  issue('intb', 'inta', CA, 12);
  key('leafb');
  issue('leafb', 'intb', LEAF, 13);
  // A leaf whose key usage does not allow signatures.
  key('nods');
  issue('nods', 'ca', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=codeSigning\n', 14);
  // A CA whose key usage lacks keyCertSign (OpenSSL then calls it no CA) signing directly.
  key('leafca');
  issue('leafca', 'ca', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n', 15);
  const chains: Array<[string, string[], RegExp]> = [
    ['subca', ['subca', 'ca'], /is a certificate authority, not a signing certificate/],
    ['leafca', ['leafca', 'ca'], /is a certificate authority, not a signing certificate/],
    ['leafb', ['leafb', 'intb', 'inta', 'ca'], /allows 0 certificate authorities below it, and the chain has 1/],
    ['nods', ['nods', 'ca'], /may not make digital signatures/],
  ];
  for (const [signer, chain, why] of chains) {
    writeFileSync(f(`${signer}-chain.pem`), chain.map((n) => readFileSync(f(`${n}.crt`), 'utf8')).join(''));
    const { store } = await builtStore(`notation-${signer}-store`);
    const signed = await gadget(['--store', store, 'sign', IMAGE, '--notation-key', f(`${signer}.key`), '--notation-cert', f(`${signer}-chain.pem`)]);
    assert.equal(signed.code, 0, signed.stderr);
    const r = await verifyJSON(store, '--notation-cert', f('ca.crt'));
    assert.equal(r.code, 1, `${signer}: ${JSON.stringify(r.report)}`);
    assert.equal(r.report.images[0]!.findings[0]!.rule, 'GADGET-SIGNATURE-INVALID', signer);
    assert.match(r.report.images[0]!.findings[0]!.message, why, signer);
  }
});

let reg: TestRegistry | undefined;
after(() => reg?.stop());

test('every format survives a push to docker-registry and a pull into an empty store, and verifies offline there', { skip: !HAVE_FIXTURE_KEY && 'fixtures absent' }, async (t) => {
  if (!(await registryAvailable())) return t.skip('docker-registry is not installed');
  reg = await startRegistry();
  const { store, digest } = await builtStore('push-store');
  const remote = `${reg.host}/gadgets/trace_open:v1`;
  for (const args of [['--key', f('cosign.key')], ['--key', FIXTURE_KEY, '--format', 'bundle'], ['--notation-key', f('leaf.key'), '--notation-cert', f('chain.pem')]]) {
    const signed = await gadget(['--store', store, 'sign', IMAGE, ...args], { env: { COSIGN_PASSWORD: args[1] === FIXTURE_KEY ? '' : PASSWORD.COSIGN_PASSWORD } });
    assert.equal(signed.code, 0, signed.stderr);
  }
  const pushed = await gadget(['--store', store, 'push', IMAGE, remote]);
  assert.equal(pushed.code, 0, pushed.stderr);
  const tags = (await (await fetch(`${reg.url}/v2/gadgets/trace_open/tags/list`)).json()) as { tags: string[] };
  assert.deepEqual(tags.tags.sort(), [`sha256-${digestHex(digest)}`, `sha256-${digestHex(digest)}.sig`, 'v1'].sort(), 'the .sig tag and the referrers fallback tag are in the registry');

  // Signed in the registry itself: a second bundle, added to the fallback index by the push.
  const remoteSigned = await gadget(['sign', '--remote', remote, '--key', f('cosign.key'), '--format', 'bundle', '--json'], { env: PASSWORD });
  assert.equal(remoteSigned.code, 0, remoteSigned.stderr);
  assert.equal(JSON.parse(remoteSigned.stdout).signatures[0].digest, digest);

  const empty = f('pulled-store');
  const pulled = await gadget(['--store', empty, 'pull', remote]);
  assert.equal(pulled.code, 0, pulled.stderr);
  await reg.stop();
  reg = undefined;
  const offline = await gadget(['--store', empty, 'verify', remote, '--require-signature', '--json',
    '--key', f('cosign.pub'), '--key', f('fixture.pub'), '--notation-cert', f('ca.crt')]);
  assert.equal(offline.code, 0, offline.stdout);
  const found = JSON.parse(offline.stdout).images[0].signature.found as Array<{ kind: string; ok: boolean }>;
  assert.deepEqual(found.map((x) => `${x.kind}:${x.ok}`).sort(), ['cosign-bundle:true', 'cosign-bundle:true', 'cosign-legacy:true', 'notation:true']);
  const wrong = await gadget(['--store', empty, 'verify', remote, '--require-signature', '--key', f('other.pub')]);
  assert.equal(wrong.code, 1);
});

test('sign() in a task: build, then sign, in gadget.config.ts', async () => {
  const project = f('project');
  const index = pathToFileURL(join(REPO, 'index.ts')).href;
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'gadget.config.ts'), `import { defineConfig, annotate, build, sign } from ${JSON.stringify(index)};
export default defineConfig({
  store: 'store',
  gadgets: [{ dir: ${JSON.stringify(join(REPO, 'examples', 'trace_open'))}, ref: ${JSON.stringify(IMAGE)} }],
  tasks: {
    release: { steps: [build(), sign({ key: '../cosign.key', format: 'bundle' })] },
    resign: { steps: [annotate({ refs: [${JSON.stringify(IMAGE)}], set: { 'org.example.round': '2' } }), sign({ key: '../cosign.key' })] },
  },
});
`);
  const run = await gadget(['run', 'release'], { cwd: project, env: PASSWORD });
  assert.equal(run.code, 0, run.stderr);
  const verified = await gadget(['--store', join(project, 'store'), 'verify', IMAGE, '--require-signature', '--key', f('cosign.pub')]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const noPassword = await gadget(['run', 'release'], { cwd: project, env: { COSIGN_PASSWORD: undefined } });
  assert.equal(noPassword.code, 2);
  assert.match(noPassword.stderr, /COSIGN_PASSWORD/);

  // The step refuses damaged content as `gadget sign` does: a signature would vouch for it.
  const store = join(project, 'store');
  const s = await openStore(store);
  const manifest = (await s.readJSON<{ manifests: Descriptor[] }>(s.resolveRef(IMAGE))).manifests[0]!;
  const layer = (await s.readJSON<Manifest>(manifest)).layers[0]!;
  s.close();
  const file = join(store, 'blobs', 'sha256', digestHex(layer.digest));
  const bytes = readFileSync(file);
  bytes[0] ^= 0xff;
  writeFileSync(file, bytes);
  const damaged = await gadget(['run', 'resign'], { cwd: project, env: PASSWORD });
  assert.equal(damaged.code, 1, damaged.stdout + damaged.stderr);
  assert.match(damaged.stderr, new RegExp(`nothing was signed: the content of .* is damaged in store .*: ${layer.digest} does not match its digest`));
});
