// Signature verification against ig's own signed store (../shared/fixtures/ig-signed-store):
// every case of the fixture table, plus tampered copies built in memory.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { digestHex, sha256 } from '../lib/oci/digest.js';
import { ANN_REF_NAME, COSIGN_SIMPLESIGNING, EMPTY_DIGEST, MT_EMPTY, MT_INDEX, MT_MANIFEST, MT_OCI_CONFIG, NOTATION_SIGNATURE } from '../lib/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import { GadgetError } from '../lib/errors.js';
import { createSignatureVerifier, verifySignatures, type SignatureOptions, type SignatureResult, type SignatureSource } from '../lib/signature/index.js';
import { parseDN, selectPolicy, loadTrustPolicy } from '../lib/signature/trustpolicy.js';
import { SHARED } from './helpers/paths.js';

const FIXTURE = path.join(SHARED, 'fixtures/ig-signed-store');
const LAYOUT = path.join(FIXTURE, 'layout');
const KEYS = path.join(FIXTURE, 'keys');
const HAVE_FIXTURES = existsSync(path.join(LAYOUT, 'index.json'));

const key = (name: string): string => path.join(KEYS, name);
const GOOD_KEY = key('cosign-good.pub');
const WRONG_KEY = key('cosign-wrong.pub');
const GOOD_CERT = key('notation-good.crt');
const WRONG_CERT = key('notation-wrong.crt');
const POLICY = key('notation-policy.json');

const REF = {
  legacy: 'ttl.sh/signed_with_cosign_legacy:latest',
  oci11: 'ttl.sh/signed_with_cosign_oci11:latest',
  bundle: 'ttl.sh/signed_with_cosign_bundle:latest',
  notationOld: 'ttl.sh/signed_with_notation_config_media_type_signature:latest',
  notationNew: 'ttl.sh/signed_with_notation_config_media_type_empty:latest',
  unsigned: 'ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests',
};
const COSIGN_IMAGES = [
  { ref: REF.legacy, kind: 'cosign-legacy' },
  { ref: REF.oci11, kind: 'cosign-oci11' },
  { ref: REF.bundle, kind: 'cosign-bundle' },
] as const;
const NOTATION_IMAGES = [REF.notationOld, REF.notationNew];

/**
 * A store-like source over the fixture layout, read straight from disk (never written):
 * tags are index.json's ref.name annotations, referrers are the index.json manifests whose
 * subject is the digest. Tests add blobs, tags and referrers in memory, or hide some.
 */
class LayoutSource implements SignatureSource {
  private readonly added = new Map<string, Buffer>();
  private readonly tags = new Map<string, Descriptor>();
  private readonly extraReferrers: Descriptor[] = [];
  private readonly hidden = new Set<string>();
  /** Bytes served for a digest without checking them, like a corrupted store. */
  private readonly corrupted = new Map<string, Buffer>();

  private constructor(private readonly index: Index) {}

  static async open(): Promise<LayoutSource> {
    return new LayoutSource(JSON.parse(await readFile(path.join(LAYOUT, 'index.json'), 'utf8')) as Index);
  }

  async read(digest: string): Promise<Buffer> {
    const bad = this.corrupted.get(digest);
    if (bad) return bad;
    if (this.hidden.has(digest)) throw new Error(`blob ${digest} is not in the store`);
    const bytes = this.added.get(digest) ?? (await readFile(path.join(LAYOUT, 'blobs/sha256', digest.slice('sha256:'.length))));
    if (sha256(bytes) !== digest) throw new Error(`blob ${digest} is corrupted`);
    return bytes;
  }

  async resolveTag(tag: string): Promise<Descriptor | undefined> {
    return this.tags.get(tag) ?? this.index.manifests.find((d) => d.annotations?.[ANN_REF_NAME] === tag);
  }

  async referrers(digest: string): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const d of [...this.index.manifests, ...this.extraReferrers]) {
      if (d.mediaType !== MT_MANIFEST || this.hidden.has(d.digest)) continue;
      let m: Manifest;
      try {
        m = JSON.parse((await this.read(d.digest)).toString('utf8')) as Manifest;
      } catch {
        continue; // ig's index.json lists manifests it never stored
      }
      if (m.subject?.digest === digest) out.push({ mediaType: d.mediaType, digest: d.digest, size: d.size, ...(m.artifactType ? { artifactType: m.artifactType } : {}) });
    }
    return out;
  }

  digestOf(ref: string): string {
    const d = this.index.manifests.find((m) => m.annotations?.[ANN_REF_NAME] === ref);
    assert.ok(d, `fixture has no ${ref}`);
    return d.digest;
  }

  put(bytes: Buffer, mediaType: string): Descriptor {
    const digest = sha256(bytes);
    this.added.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }

  putJSON(value: unknown, mediaType: string): Descriptor {
    return this.put(Buffer.from(JSON.stringify(value)), mediaType);
  }

  async json<T>(digest: string): Promise<T> {
    return JSON.parse((await this.read(digest)).toString('utf8')) as T;
  }

  tag(tag: string, desc: Descriptor): void {
    this.tags.set(tag, desc);
  }

  addReferrer(desc: Descriptor): void {
    this.extraReferrers.push(desc);
  }

  hide(digest: string): void {
    this.hidden.add(digest);
  }

  corrupt(digest: string, bytes: Buffer): void {
    this.corrupted.set(digest, bytes);
  }
}

const tagsOf = (digest: string) => ({ legacy: `sha256-${digest.slice(7)}.sig`, fallback: `sha256-${digest.slice(7)}` });

/** Points the referrers fallback tag of `subject` at a new index listing `manifests`. */
function setFallback(src: LayoutSource, subject: string, manifests: Descriptor[]): void {
  const index = src.putJSON({ schemaVersion: 2, mediaType: MT_INDEX, manifests }, MT_INDEX);
  src.tag(tagsOf(subject).fallback, index);
}

/** Flips one character of `text` at the first occurrence of `marker` (keeps it parseable). */
function flipAt(text: string, marker: string): string {
  const i = text.indexOf(marker);
  assert.ok(i >= 0, `marker ${marker} not found`);
  const c = text[i]!;
  return text.slice(0, i) + (c === 'x' ? 'y' : 'x') + text.slice(i + 1);
}

function fixtureTest(name: string, fn: (t: TestContext, src: LayoutSource) => Promise<void>): void {
  test(name, async (t) => {
    if (!HAVE_FIXTURES) {
      t.skip(`fixtures absent: ${FIXTURE} (../shared next to the repository) holds ig's signed store`);
      return;
    }
    await fn(t, await LayoutSource.open());
  });
}

async function verifyRef(src: LayoutSource, ref: string, opts: SignatureOptions): Promise<SignatureResult> {
  return verifySignatures(src, src.digestOf(ref), { ...opts, reference: ref });
}

/** The house style of a reason: one sentence, starting lowercase, without a full stop. */
function assertOneSentence(reason: string): void {
  assert.match(reason, /^[a-z][^\n]*[^.\s]$/, `reason is not one lowercase sentence without a full stop: ${reason}`);
}

function assertFails(r: SignatureResult, kind: string, pattern: RegExp): void {
  assert.equal(r.verified, false, r.reason);
  const f = r.found.find((x) => x.kind === kind);
  assert.ok(f, `no ${kind} signature found: ${r.reason}`);
  assert.equal(f.ok, false);
  assert.match(f.reason, pattern);
  assertOneSentence(f.reason);
}

const NOTATION_OPTS = { notationCerts: [GOOD_CERT], notationPolicy: POLICY };

// ---- the fixture table ------------------------------------------------------------------

for (const { ref, kind } of COSIGN_IMAGES) {
  fixtureTest(`${kind}: the good key verifies ${ref}`, async (_t, src) => {
    const r = await verifyRef(src, ref, { cosignKeys: [GOOD_KEY] });
    assert.equal(r.verified, true, r.reason);
    assert.equal(r.found.length, 1);
    assert.equal(r.found[0]!.kind, kind);
    assert.equal(r.found[0]!.keyOrCert, GOOD_KEY);
    assertOneSentence(r.found[0]!.reason);
  });

  fixtureTest(`${kind}: the wrong key fails ${ref}`, async (_t, src) => {
    const r = await verifyRef(src, ref, { cosignKeys: [WRONG_KEY] });
    assertFails(r, kind, /does not verify with the given public key .*cosign-wrong\.pub/);
  });

  fixtureTest(`${kind}: [wrong, good] keys verify ${ref}`, async (_t, src) => {
    const r = await verifyRef(src, ref, { cosignKeys: [WRONG_KEY, GOOD_KEY] });
    assert.equal(r.verified, true, r.reason);
    assert.equal(r.found[0]!.keyOrCert, GOOD_KEY);
  });

  fixtureTest(`${kind}: a notation certificate alone does not verify ${ref}`, async (_t, src) => {
    const r = await verifyRef(src, ref, NOTATION_OPTS);
    assertFails(r, kind, /^no cosign public key was given to check this (cosign signature|Sigstore bundle)$/);
  });
}

for (const ref of NOTATION_IMAGES) {
  fixtureTest(`notation: the good certificate with the permissive policy verifies ${ref} and logs the expiry`, async (_t, src) => {
    const r = await verifyRef(src, ref, NOTATION_OPTS);
    assert.equal(r.verified, true, r.reason);
    assert.equal(r.found.length, 1);
    const f = r.found[0]!;
    assert.equal(f.kind, 'notation');
    assert.match(f.keyOrCert!, /notation-good\.crt/);
    assert.match(f.reason, /permissive.*expired on 2026-01-21T14:40:53Z/);
    assertOneSentence(f.reason);
  });

  fixtureTest(`notation: the wrong certificate fails ${ref}`, async (_t, src) => {
    const r = await verifyRef(src, ref, { notationCerts: [WRONG_CERT], notationPolicy: POLICY });
    assertFails(r, 'notation', /does not lead to the given trusted certificate .*notation-wrong\.crt/);
  });

  fixtureTest(`notation: [wrong, good] certificates verify ${ref}`, async (_t, src) => {
    const r = await verifyRef(src, ref, { notationCerts: [WRONG_CERT, GOOD_CERT], notationPolicy: POLICY });
    assert.equal(r.verified, true, r.reason);
    assert.match(r.found[0]!.keyOrCert!, /notation-good\.crt/);
  });

  fixtureTest(`notation: a strict policy fails ${ref} on the expired certificate`, async (_t, src) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gadget-sig-'));
    try {
      const policy = JSON.parse(await readFile(POLICY, 'utf8')) as { trustPolicies: Array<{ signatureVerification: { level: string } }> };
      policy.trustPolicies[0]!.signatureVerification.level = 'strict';
      const strict = path.join(dir, 'strict-policy.json');
      await writeFile(strict, JSON.stringify(policy));
      const r = await verifyRef(src, ref, { notationCerts: [GOOD_CERT], notationPolicy: strict });
      assertFails(r, 'notation', /expired on 2026-01-21T14:40:53Z \(enforced by trust policy "test-policy", level strict\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  fixtureTest(`notation: a cosign key alone does not verify ${ref}`, async (_t, src) => {
    const r = await verifyRef(src, ref, { cosignKeys: [GOOD_KEY] });
    assertFails(r, 'notation', /^no notation certificate was given to check this notation signature$/);
  });
}

fixtureTest('unsigned: every key and certificate fails, nothing is found', async (_t, src) => {
  const all = { cosignKeys: [GOOD_KEY, WRONG_KEY], notationCerts: [GOOD_CERT, WRONG_CERT], notationPolicy: POLICY };
  const r = await verifyRef(src, REF.unsigned, all);
  assert.equal(r.verified, false);
  assert.deepEqual(r.found, []);
  assert.match(r.reason, /^no signature of sha256:f34a362f.* was found \(looked for the tags .* and for referrers\)$/);
  assertOneSentence(r.reason);
});

// ---- trust policy levels ----------------------------------------------------------------

async function withPolicy(t: TestContext, edit: (p: Record<string, unknown> & { trustPolicies: Array<Record<string, unknown>> }) => void): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gadget-sig-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const policy = JSON.parse(await readFile(POLICY, 'utf8')) as Record<string, unknown> & { trustPolicies: Array<Record<string, unknown>> };
  edit(policy);
  const file = path.join(dir, 'policy.json');
  await writeFile(file, JSON.stringify(policy));
  return file;
}

fixtureTest('notation: an audit policy only logs an untrusted certificate', async (t, src) => {
  const file = await withPolicy(t, (p) => { p.trustPolicies[0]!.signatureVerification = { level: 'audit' }; });
  const r = await verifyRef(src, REF.notationNew, { notationCerts: [WRONG_CERT], notationPolicy: file });
  assert.equal(r.verified, true, r.reason);
  assert.match(r.found[0]!.reason, /audit.*does not lead to the given trusted certificate/);
});

fixtureTest('notation: audit still enforces integrity (tampered payload fails)', async (t, src) => {
  const file = await withPolicy(t, (p) => { p.trustPolicies[0]!.signatureVerification = { level: 'audit' }; });
  await tamperNotation(src, REF.notationNew);
  const r = await verifyRef(src, REF.notationNew, { notationCerts: [GOOD_CERT], notationPolicy: file });
  assertFails(r, 'notation', /does not verify with the key of its signing certificate/);
});

fixtureTest('notation: an override enforcing the timestamp check fails the permissive policy', async (t, src) => {
  const file = await withPolicy(t, (p) => {
    p.trustPolicies[0]!.signatureVerification = { level: 'permissive', override: { authenticTimestamp: 'enforce' } };
  });
  const r = await verifyRef(src, REF.notationOld, { notationCerts: [GOOD_CERT], notationPolicy: file });
  assertFails(r, 'notation', /expired on .* \(enforced by trust policy/);
});

fixtureTest('notation: a skip statement scoped to the repository accepts without verifying', async (t, src) => {
  const file = await withPolicy(t, (p) => {
    p.trustPolicies.push({ name: 'skip-it', registryScopes: ['ttl.sh/signed_with_notation_config_media_type_empty'], signatureVerification: { level: 'skip' } });
  });
  const r = await verifyRef(src, REF.notationNew, { notationCerts: [WRONG_CERT], notationPolicy: file });
  assert.equal(r.verified, true, r.reason);
  assert.match(r.found[0]!.reason, /skip-it" has level skip/);
  // The other image still falls under the global permissive statement.
  const other = await verifyRef(src, REF.notationOld, { notationCerts: [WRONG_CERT], notationPolicy: file });
  assert.equal(other.verified, false);
});

fixtureTest('notation: a trusted identity that does not match the certificate fails', async (t, src) => {
  const file = await withPolicy(t, (p) => { p.trustPolicies[0]!.trustedIdentities = ['x509.subject: C=US, ST=WA, O=Someone Else']; });
  const r = await verifyRef(src, REF.notationOld, { notationCerts: [GOOD_CERT], notationPolicy: file });
  assertFails(r, 'notation', /signing identity .*CN=test\.io.* is not among the trusted identities/);
});

fixtureTest('notation: without a policy the default is strict and fails on the expired certificate', async (_t, src) => {
  const r = await verifyRef(src, REF.notationOld, { notationCerts: [GOOD_CERT] });
  assertFails(r, 'notation', /expired on 2026-01-21T14:40:53Z \(enforced by trust policy "default", level strict\)/);
});

test('trust policy: DN parsing and statement selection', async (t) => {
  assert.deepEqual([...parseDN('CN=a\\, b, O=x\\\\y ,C=US')!], [['CN', 'a, b'], ['O', 'x\\y'], ['C', 'US']]);
  assert.equal(parseDN('CN=a, CN=b'), undefined);
  assert.equal(parseDN('nonsense'), undefined);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gadget-sig-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'p.json');
  const stmt = (name: string, scopes: string[]) => ({ name, registryScopes: scopes, signatureVerification: { level: 'strict' }, trustStores: ['ca:x'], trustedIdentities: ['*'] });
  await writeFile(file, JSON.stringify({ version: '1.0', trustPolicies: [stmt('global', ['*']), stmt('exact', ['ghcr.io/org/app'])] }));
  const doc = await loadTrustPolicy(file);
  assert.equal((selectPolicy(doc, 'ghcr.io/org/app:v1') as { name: string }).name, 'exact');
  assert.equal((selectPolicy(doc, 'ghcr.io/org/other:v1') as { name: string }).name, 'global');
  assert.equal((selectPolicy(doc) as { name: string }).name, 'global');
  await writeFile(file, JSON.stringify({ version: '1.0', trustPolicies: [stmt('exact', ['ghcr.io/org/app'])] }));
  assert.equal(selectPolicy(await loadTrustPolicy(file), 'ghcr.io/org/other'), `no statement of the trust policy "${file}" applies to ghcr.io/org/other`);
  await writeFile(file, JSON.stringify({ version: '1.0', trustPolicies: [{ ...stmt('bad', ['*']), signatureVerification: { level: 'lenient' } }] }));
  await assert.rejects(loadTrustPolicy(file), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && /level "lenient"/.test(e.message));
  // Names every JavaScript object has are not levels or overrides (they would enforce nothing).
  const refused = async (statements: object[], message: RegExp): Promise<void> => {
    await writeFile(file, JSON.stringify({ version: '1.0', trustPolicies: statements }));
    await assert.rejects(loadTrustPolicy(file), (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && message.test(e.message), message.source);
  };
  for (const level of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    await refused([{ ...stmt('bad', ['*']), signatureVerification: { level } }], new RegExp(`level "${level}"`));
  }
  await refused([{ ...stmt('bad', ['*']), signatureVerification: { level: 'strict', override: { toString: 'log' } } }], /overrides "toString" with "log"/);
  // notation refuses one scope in two statements, and scopes other than "*" or a whole repository.
  await refused([stmt('audit', ['ghcr.io/org/app']), stmt('strict', ['ghcr.io/org/app'])], /the registry scope "ghcr.io\/org\/app" is in more than one statement/);
  for (const scope of ['ghcr.io/org/*', 'ghcr.io/org/app:v1', 'app', 'ghcr.io/Org/app']) {
    await refused([stmt('odd', [scope])], new RegExp(`registry scope "${scope.replace(/[.*]/g, '\\$&')}"`));
  }
  await writeFile(file, JSON.stringify({ version: '1.0', trustPolicies: [stmt('ports', ['localhost:5000/a/b-c', 'registry.example.com/x__y.z'])] }));
  assert.equal((await loadTrustPolicy(file)).policies[0]!.registryScopes.length, 2, 'a port, "__" and "." are repository names');
});

// ---- tampering: a flipped byte in a signed payload --------------------------------------

fixtureTest('cosign-legacy: a flipped byte in the signed payload fails', async (_t, src) => {
  const image = src.digestOf(REF.legacy);
  const sigDesc = (await src.resolveTag(tagsOf(image).legacy))!;
  const sig = await src.json<Manifest>(sigDesc.digest);
  const payload = (await src.read(sig.layers[0]!.digest)).toString('utf8');
  const layer = src.put(Buffer.from(flipAt(payload, 'signed_with')), sig.layers[0]!.mediaType);
  const tampered = { ...sig, layers: [{ ...sig.layers[0]!, digest: layer.digest, size: layer.size }] };
  src.tag(tagsOf(image).legacy, src.putJSON(tampered, MT_MANIFEST));
  assertFails(await verifyRef(src, REF.legacy, { cosignKeys: [GOOD_KEY] }), 'cosign-legacy', /does not verify with the given public key/);
});

fixtureTest('cosign-legacy: a flipped byte in the signature annotation fails', async (_t, src) => {
  const image = src.digestOf(REF.legacy);
  const sig = await src.json<Manifest>((await src.resolveTag(tagsOf(image).legacy))!.digest);
  const ann = sig.layers[0]!.annotations!;
  const value = ann['dev.cosignproject.cosign/signature']!;
  const flipped = value.slice(0, 20) + (value[20] === 'A' ? 'B' : 'A') + value.slice(21);
  const tampered = { ...sig, layers: [{ ...sig.layers[0]!, annotations: { ...ann, 'dev.cosignproject.cosign/signature': flipped } }] };
  src.tag(tagsOf(image).legacy, src.putJSON(tampered, MT_MANIFEST));
  assertFails(await verifyRef(src, REF.legacy, { cosignKeys: [GOOD_KEY] }), 'cosign-legacy', /does not verify/);
});

fixtureTest('cosign-oci11: a flipped byte in the signed payload fails', async (_t, src) => {
  const image = src.digestOf(REF.oci11);
  const fallback = await src.json<Index>((await src.resolveTag(tagsOf(image).fallback))!.digest);
  const sig = await src.json<Manifest>(fallback.manifests[0]!.digest);
  const payload = (await src.read(sig.layers[0]!.digest)).toString('utf8');
  const layer = src.put(Buffer.from(flipAt(payload, 'signed_with')), sig.layers[0]!.mediaType);
  const desc = src.putJSON({ ...sig, layers: [{ ...sig.layers[0]!, digest: layer.digest, size: layer.size }] }, MT_MANIFEST);
  setFallback(src, image, [{ ...desc, artifactType: fallback.manifests[0]!.artifactType }]);
  assertFails(await verifyRef(src, REF.oci11, { cosignKeys: [GOOD_KEY] }), 'cosign-oci11', /does not verify/);
});

fixtureTest('cosign-bundle: a flipped byte in the DSSE payload fails', async (_t, src) => {
  const image = src.digestOf(REF.bundle);
  const fallback = await src.json<Index>((await src.resolveTag(tagsOf(image).fallback))!.digest);
  const sig = await src.json<Manifest>(fallback.manifests[0]!.digest);
  const bundle = await src.json<{ dsseEnvelope: { payload: string } }>(sig.layers[0]!.digest);
  const statement = Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8');
  bundle.dsseEnvelope.payload = Buffer.from(flipAt(statement, 'cosign/sign')).toString('base64');
  const layer = src.putJSON(bundle, sig.layers[0]!.mediaType);
  const desc = src.putJSON({ ...sig, layers: [{ ...sig.layers[0]!, digest: layer.digest, size: layer.size }] }, MT_MANIFEST);
  setFallback(src, image, [desc]);
  src.hide(fallback.manifests[0]!.digest); // index.json also lists the original untagged: a referrer
  assertFails(await verifyRef(src, REF.bundle, { cosignKeys: [GOOD_KEY] }), 'cosign-bundle', /does not verify/);
});

/** Replaces the notation signature of `ref` by one whose JWS payload has a flipped byte. */
async function tamperNotation(src: LayoutSource, ref: string): Promise<void> {
  const image = src.digestOf(ref);
  const [orig] = await src.referrers(image);
  assert.ok(orig, `no notation referrer for ${ref}`);
  const sig = await src.json<Manifest>(orig.digest);
  const env = await src.json<{ payload: string }>(sig.layers[0]!.digest);
  const payload = Buffer.from(env.payload, 'base64url').toString('utf8');
  env.payload = Buffer.from(flipAt(payload, 'image.index')).toString('base64url');
  const layer = src.putJSON(env, sig.layers[0]!.mediaType);
  src.hide(orig.digest);
  src.addReferrer(src.putJSON({ ...sig, layers: [{ ...sig.layers[0]!, digest: layer.digest, size: layer.size }] }, MT_MANIFEST));
}

for (const ref of NOTATION_IMAGES) {
  fixtureTest(`notation: a flipped byte in the JWS payload fails ${ref}`, async (_t, src) => {
    await tamperNotation(src, ref);
    assertFails(await verifyRef(src, ref, NOTATION_OPTS), 'notation', /does not verify with the key of its signing certificate/);
  });
}

fixtureTest('cosign: a signature blob whose bytes do not match its digest fails', async (_t, src) => {
  const image = src.digestOf(REF.legacy);
  const sig = await src.json<Manifest>((await src.resolveTag(tagsOf(image).legacy))!.digest);
  const payload = (await src.read(sig.layers[0]!.digest)).toString('utf8');
  src.corrupt(sig.layers[0]!.digest, Buffer.from(flipAt(payload, 'signed_with')));
  assertFails(await verifyRef(src, REF.legacy, { cosignKeys: [GOOD_KEY] }), 'cosign-legacy', /does not match its digest/);
});

// ---- a valid signature of another image -------------------------------------------------

fixtureTest('cosign-legacy: a signature whose payload names another digest fails', async (_t, src) => {
  const signed = src.digestOf(REF.legacy);
  src.tag(tagsOf(src.digestOf(REF.unsigned)).legacy, (await src.resolveTag(tagsOf(signed).legacy))!);
  const r = await verifyRef(src, REF.unsigned, { cosignKeys: [GOOD_KEY] });
  assertFails(r, 'cosign-legacy', new RegExp(`payload names ${signed}, not the image sha256:f34a362f`));
});

fixtureTest('cosign-oci11: a referrer of this image whose payload names another digest fails', async (_t, src) => {
  const signed = src.digestOf(REF.oci11);
  const unsigned = src.digestOf(REF.unsigned);
  const fallback = await src.json<Index>((await src.resolveTag(tagsOf(signed).fallback))!.digest);
  const sig = await src.json<Manifest>(fallback.manifests[0]!.digest);
  const moved = src.putJSON({ ...sig, subject: { ...sig.subject!, digest: unsigned } }, MT_MANIFEST);
  setFallback(src, unsigned, [moved]);
  assertFails(await verifyRef(src, REF.unsigned, { cosignKeys: [GOOD_KEY] }), 'cosign-oci11', new RegExp(`payload names ${signed}`));
});

fixtureTest('cosign-bundle: a referrer of this image whose statement names another digest fails', async (_t, src) => {
  const signed = src.digestOf(REF.bundle);
  const unsigned = src.digestOf(REF.unsigned);
  const fallback = await src.json<Index>((await src.resolveTag(tagsOf(signed).fallback))!.digest);
  const sig = await src.json<Manifest>(fallback.manifests[0]!.digest);
  setFallback(src, unsigned, [src.putJSON({ ...sig, subject: { ...sig.subject!, digest: unsigned } }, MT_MANIFEST)]);
  assertFails(await verifyRef(src, REF.unsigned, { cosignKeys: [GOOD_KEY] }), 'cosign-bundle', new RegExp(`in-toto statement names ${signed}`));
});

fixtureTest('notation: a referrer of this image whose payload names another digest fails', async (_t, src) => {
  const signed = src.digestOf(REF.notationNew);
  const unsigned = src.digestOf(REF.unsigned);
  const [orig] = await src.referrers(signed);
  const sig = await src.json<Manifest>(orig!.digest);
  src.addReferrer(src.putJSON({ ...sig, subject: { ...sig.subject!, digest: unsigned } }, MT_MANIFEST));
  const r = await verifyRef(src, REF.unsigned, NOTATION_OPTS);
  assertFails(r, 'notation', new RegExp(`payload names ${signed}, not the image ${unsigned}`));
});

fixtureTest('a fallback index listing a signature of another subject fails clearly', async (_t, src) => {
  const signed = src.digestOf(REF.oci11);
  const unsigned = src.digestOf(REF.unsigned);
  src.tag(tagsOf(unsigned).fallback, (await src.resolveTag(tagsOf(signed).fallback))!);
  const r = await verifyRef(src, REF.unsigned, { cosignKeys: [GOOD_KEY] });
  assertFails(r, 'cosign-oci11', new RegExp(`subject is ${signed}, not the image ${unsigned}`));
});

// ---- finding ----------------------------------------------------------------------------

fixtureTest('entries of a fallback index missing from the store are skipped', async (_t, src) => {
  const image = src.digestOf(REF.oci11);
  const fallback = await src.json<Index>((await src.resolveTag(tagsOf(image).fallback))!.digest);
  const absent = { mediaType: MT_MANIFEST, digest: 'sha256:3cacc8aeae9b318d42d8b3c89dcaa9962617bd6726a44e0af7598dec535a051c', size: 721 };
  setFallback(src, image, [absent, ...fallback.manifests]);
  const r = await verifyRef(src, REF.oci11, { cosignKeys: [GOOD_KEY] });
  assert.equal(r.verified, true, r.reason);
  assert.equal(r.found.length, 1);
  // With only absent entries, nothing is found and the summary says why.
  setFallback(src, image, [absent]);
  const none = await verifyRef(src, REF.oci11, { cosignKeys: [GOOD_KEY] });
  assert.equal(none.verified, false);
  assert.deepEqual(none.found, []);
  assert.match(none.reason, /1 signature manifest\(s\) listed for it are not in the store/);
});

fixtureTest('one verifier checks many images; keys may be PEM text', async (_t, src) => {
  const pem = await readFile(GOOD_KEY, 'utf8');
  const verify = await createSignatureVerifier({ cosignKeys: [WRONG_KEY, pem], ...NOTATION_OPTS });
  const results = new Map<string, boolean>();
  for (const ref of Object.values(REF)) results.set(ref, (await verify(src, src.digestOf(ref), ref)).verified);
  assert.deepEqual([...results.values()], [true, true, true, true, true, false]);
  const r = await verify(src, src.digestOf(REF.bundle), REF.bundle);
  assert.match(r.found[0]!.keyOrCert!, /^key #2 \(sha256:[0-9a-f]{16}\)$/);
});

// ---- the form of a reason --------------------------------------------------------------

/** An EC P-256 public key (PEM text) that signed nothing here. */
const UNRELATED_KEY = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEn6u8dLv8gnPGFEoAeeRXZ9r1QUqu\nvxvpnBNH+Gwent1O0IisyCeEYEeGAOVcmqCLFywoF62CUMZIex/Xw56nfw==\n-----END PUBLIC KEY-----\n';

/** A source holding only what the test puts in it: blobs, tags and referrers. */
function memorySource(): SignatureSource & { put(value: unknown, mediaType: string): Descriptor; tags: Map<string, Descriptor>; listed: Descriptor[] } {
  const blobs = new Map<string, Buffer>();
  const tags = new Map<string, Descriptor>();
  const listed: Descriptor[] = [];
  return {
    tags,
    listed,
    put(value, mediaType) {
      const bytes = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
      blobs.set(sha256(bytes), bytes);
      return { mediaType, digest: sha256(bytes), size: bytes.length };
    },
    async read(digest) {
      const bytes = blobs.get(digest);
      if (!bytes) throw new Error(`blob ${digest} is not in the store`);
      return bytes;
    },
    resolveTag: async (tag) => tags.get(tag),
    referrers: async () => listed,
  };
}

test('verdict reasons and the summary are one lowercase sentence without a full stop, word for word', async () => {
  const src = memorySource();
  const image = sha256('an image index');
  const hex = digestHex(image);
  const opts = { cosignKeys: [UNRELATED_KEY] };

  const none = await verifySignatures(src, image, opts);
  assert.equal(none.reason, `no signature of ${image} was found (looked for the tags sha256-${hex}.sig and sha256-${hex} and for referrers)`);

  // A cosign .sig manifest with no simple-signing layer.
  const config = src.put({}, MT_OCI_CONFIG);
  const empty = src.put({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [] }, MT_MANIFEST);
  src.tags.set(`sha256-${hex}.sig`, empty);
  const one = await verifySignatures(src, image, opts);
  assert.deepEqual(one.found.map((f) => f.reason), ['the cosign signature manifest has no simple-signing layer']);
  assert.equal(one.reason, `the only signature of ${image} (cosign-legacy ${empty.digest}) fails: the cosign signature manifest has no simple-signing layer`);

  // A layer whose payload is not in the store: readChecked's message is the reason.
  const payload = { mediaType: COSIGN_SIMPLESIGNING, digest: sha256('a payload'), size: 9 };
  const absent = src.put({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [{ ...payload, annotations: { 'dev.cosignproject.cosign/signature': 'AAAA' } }] }, MT_MANIFEST);
  src.tags.set(`sha256-${hex}.sig`, absent);
  const unreadable = await verifySignatures(src, image, opts);
  assert.equal(unreadable.found[0]!.reason, `the cosign payload ${payload.digest} cannot be read: blob ${payload.digest} is not in the store`);

  // A payload that is there, signed by another key; and a notation signature with no certificate given.
  const stored = src.put('a payload', COSIGN_SIMPLESIGNING);
  const signed = src.put({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [{ ...stored, annotations: { 'dev.cosignproject.cosign/signature': 'AAAA' } }] }, MT_MANIFEST);
  src.tags.set(`sha256-${hex}.sig`, signed);
  const notation = src.put({
    schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: NOTATION_SIGNATURE,
    config: { mediaType: MT_EMPTY, digest: EMPTY_DIGEST, size: 2 }, layers: [], subject: { mediaType: MT_INDEX, digest: image, size: 1 },
  }, MT_MANIFEST);
  src.listed.push(notation);
  const two = await verifySignatures(src, image, opts);
  assert.deepEqual(two.found.map((f) => f.kind), ['cosign-legacy', 'notation']);
  assert.match(two.found[0]!.reason, /^the cosign signature does not verify with the given public key key #1 \(sha256:[0-9a-f]{16}\)$/);
  assert.equal(two.found[1]!.reason, 'no notation certificate was given to check this notation signature');
  assert.equal(two.reason, `none of the 2 signatures of ${image} verifies; the first (cosign-legacy ${signed.digest}) fails: ${two.found[0]!.reason}`);
  for (const r of [none.reason, one.reason, unreadable.reason, two.reason, ...two.found.map((f) => f.reason)]) assertOneSentence(r);
});

fixtureTest('notation: a failed check reads as the phrase itself, not capitalised nor with a full stop', async (_t, src) => {
  const image = src.digestOf(REF.unsigned);
  const envelope = src.put(Buffer.from('{}'), 'application/jose+json');
  src.addReferrer(src.putJSON({
    schemaVersion: 2, mediaType: MT_MANIFEST, artifactType: NOTATION_SIGNATURE,
    config: { mediaType: MT_EMPTY, digest: EMPTY_DIGEST, size: 2 }, layers: [envelope, envelope], subject: { mediaType: MT_INDEX, digest: image, size: 1 },
  }, MT_MANIFEST));
  const r = await verifyRef(src, REF.unsigned, NOTATION_OPTS);
  assert.deepEqual(r.found.map((f) => f.reason), ['the notation signature manifest has 2 layers, not one envelope']);
});

// ---- usage errors -----------------------------------------------------------------------

test('usage errors: no material, unreadable key, not a key, bad digest', async (t) => {
  const src: SignatureSource = { read: async () => { throw new Error('none'); }, resolveTag: async () => undefined, referrers: async () => [] };
  const digest = sha256('x');
  const isUsage = (re: RegExp) => (e: unknown) => e instanceof GadgetError && e.exitCode === 2 && re.test(e.message) && !e.message.endsWith('.');
  await assert.rejects(verifySignatures(src, digest, {}), isUsage(/^no cosign public key and no notation certificate/));
  await assert.rejects(verifySignatures(src, digest, { cosignKeys: ['/nonexistent/cosign.pub'] }), isUsage(/cannot read the public key file "\/nonexistent\/cosign\.pub"/));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gadget-sig-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const junk = path.join(dir, 'junk.pub');
  await writeFile(junk, 'not a key\n');
  await assert.rejects(verifySignatures(src, digest, { cosignKeys: [junk] }), isUsage(/junk\.pub" is not a usable public key/));
  await assert.rejects(verifySignatures(src, digest, { notationCerts: [junk] }), isUsage(/is not a usable certificate/));
  const pem = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEn6u8dLv8gnPGFEoAeeRXZ9r1QUqu\nvxvpnBNH+Gwent1O0IisyCeEYEeGAOVcmqCLFywoF62CUMZIex/Xw56nfw==\n-----END PUBLIC KEY-----\n';
  await assert.rejects(verifySignatures(src, 'latest', { cosignKeys: [pem] }), isUsage(/"latest" is not a sha256 digest/));
  const r = await verifySignatures(src, digest, { cosignKeys: [pem] });
  assert.equal(r.verified, false);
  assert.deepEqual(r.found, []);
});
