// Keyless cosign signatures verified offline (../shared/fixtures/sigstore-keyless): a cosign
// bundle v0.3 attestation attached as a referrer, and a cosign legacy keyless `.sig` (with
// certificate, chain and Rekor bundle annotations), each over an image wrapped in an OCI
// layout. Each verifies with the right identity, issuer and trusted root, and fails, with
// its rule id, with a wrong identity, a wrong issuer, the staging root, or a tampered copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../lib/oci/digest.js';
import { encodeJSONBytes } from '../lib/oci/json.js';
import { ANN_REF_NAME, MT_MANIFEST } from '../lib/oci/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../lib/oci/types.js';
import { createSignatureVerifier, type KeylessOptions, type SignatureResult, type SignatureSource } from '../lib/signature/index.js';
import { gadget } from './helpers/cli.js';
import { SHARED, scratch } from './helpers/paths.js';

const F = path.join(SHARED, 'fixtures', 'sigstore-keyless');
const HAVE = existsSync(path.join(F, 'trusted-roots'));
const PRODUCTION = path.join(F, 'trusted-roots', 'trusted_root.production.json');
const STAGING = path.join(F, 'trusted-roots', 'trusted_root.staging.json');
const GITHUB = 'https://github.com/login/oauth';

const FORMS = {
  bundle: {
    layout: path.join(F, 'cosign-bundle', 'derived', 'oci-layout'),
    digest: 'sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4',
    identity: 'cody@soyland.com',
    kind: 'cosign-bundle',
  },
  legacy: {
    layout: path.join(F, 'cosign-legacy', 'derived', 'oci-layout'),
    digest: 'sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a',
    identity: 'mitr@redhat.com',
    kind: 'cosign-legacy',
  },
} as const;

/**
 * The fixture layout read from disk (never written), with blobs and tags that a test
 * replaces in memory: a tampered copy takes the place of the real signature.
 */
class FixtureSource implements SignatureSource {
  readonly added = new Map<string, Buffer>();
  readonly tags = new Map<string, Descriptor>();
  readonly referrerOverride: Descriptor[] | undefined;
  constructor(private readonly root: string, private readonly index: Index, referrers?: Descriptor[]) {
    this.referrerOverride = referrers;
  }
  static async open(root: string, referrers?: Descriptor[]): Promise<FixtureSource> {
    return new FixtureSource(root, JSON.parse(await readFile(path.join(root, 'index.json'), 'utf8')) as Index, referrers);
  }
  async read(digest: string): Promise<Buffer> {
    return this.added.get(digest) ?? readFile(path.join(this.root, 'blobs', 'sha256', digest.slice(7)));
  }
  async resolveTag(tag: string): Promise<Descriptor | undefined> {
    return this.tags.get(tag) ?? this.index.manifests.find((d) => d.annotations?.[ANN_REF_NAME] === tag);
  }
  async referrers(): Promise<Descriptor[]> {
    return this.referrerOverride ?? this.index.manifests.filter((d) => d.artifactType !== undefined);
  }
  put(bytes: Buffer, mediaType: string): Descriptor {
    const d = { mediaType, digest: sha256(bytes), size: bytes.length };
    this.added.set(d.digest, bytes);
    return d;
  }
}

function keyless(identity: string, more: Partial<KeylessOptions> = {}): KeylessOptions {
  return { trustedRoot: PRODUCTION, identity, issuer: GITHUB, ...more };
}

async function verifyForm(form: keyof typeof FORMS, opts: KeylessOptions, source?: FixtureSource): Promise<SignatureResult> {
  const f = FORMS[form];
  const verifier = await createSignatureVerifier({ keyless: opts });
  return verifier(source ?? (await FixtureSource.open(f.layout)), f.digest);
}

for (const form of ['bundle', 'legacy'] as const) {
  const f = FORMS[form];

  test(`keyless ${form}: verifies offline with the right identity, issuer and root`, { skip: !HAVE && 'fixtures absent' }, async () => {
    const exact = await verifyForm(form, keyless(f.identity));
    assert.equal(exact.verified, true, exact.reason);
    assert.equal(exact.found[0]!.kind, f.kind);
    assert.match(exact.reason, new RegExp(f.identity.replace('.', '\\.')));
    const regexp = await verifyForm(form, { trustedRoot: PRODUCTION, identityRegexp: '@(soyland|redhat)\\.com$', issuerRegexp: '^https://github\\.com/' });
    assert.equal(regexp.verified, true, regexp.reason);
  });

  test(`keyless ${form}: a wrong identity, a wrong issuer or the staging root fails with its rule`, { skip: !HAVE && 'fixtures absent' }, async () => {
    const identity = await verifyForm(form, keyless('someone@example.com'));
    assert.equal(identity.verified, false);
    assert.equal(identity.rule, 'GADGET-SIGNATURE-IDENTITY');
    assert.match(identity.reason, /wrong identity/);
    const regexp = await verifyForm(form, { trustedRoot: PRODUCTION, identityRegexp: '^nobody@', issuer: GITHUB });
    assert.equal(regexp.rule, 'GADGET-SIGNATURE-IDENTITY');
    const issuer = await verifyForm(form, keyless(f.identity, { issuer: 'https://accounts.google.com' }));
    assert.equal(issuer.verified, false);
    assert.equal(issuer.rule, 'GADGET-SIGNATURE-IDENTITY');
    assert.match(issuer.reason, /wrong issuer/);
    const staging = await verifyForm(form, keyless(f.identity, { trustedRoot: STAGING }));
    assert.equal(staging.verified, false);
    assert.equal(staging.rule, 'GADGET-SIGNATURE-UNTRUSTED');
    assert.match(staging.reason, /untrusted CA/);
  });
}

// Each tampered bundle must fail; the rule says why.
const BUNDLE_NEGATIVE: Record<string, string> = {
  'swapped-certificate': 'GADGET-SIGNATURE-EXPIRED',
  'tampered-dsse-signature': 'GADGET-SIGNATURE-INVALID',
  'tampered-inclusion-proof': 'GADGET-SIGNATURE-TLOG',
  'tampered-integrated-time': 'GADGET-SIGNATURE-EXPIRED',
  'tampered-payload-subject': 'GADGET-SIGNATURE-DIGEST',
  'tampered-set': 'GADGET-SIGNATURE-TLOG',
};

test('keyless bundle: every tampered copy in derived/negative fails with its rule', { skip: !HAVE && 'fixtures absent' }, async () => {
  const f = FORMS.bundle;
  const original = JSON.parse(await readFile(path.join(f.layout, 'blobs', 'sha256', '0a5494386d20bb2468d0ee21eedb61b5915b6592de15eb147ab6246b5121e6d6'), 'utf8')) as Manifest;
  for (const [name, rule] of Object.entries(BUNDLE_NEGATIVE)) {
    const bytes = await readFile(path.join(F, 'cosign-bundle', 'derived', 'negative', `${name}.sigstore.json`));
    const source = await FixtureSource.open(f.layout, []);
    const layer = source.put(bytes, original.layers[0]!.mediaType);
    const manifest = source.put(encodeJSONBytes({ ...original, layers: [layer] }), MT_MANIFEST);
    (source.referrerOverride as Descriptor[]).push({ ...manifest, artifactType: original.artifactType });
    const result = await verifyForm('bundle', keyless(f.identity), source);
    assert.equal(result.verified, false, `${name} must fail`);
    assert.equal(result.rule, rule, `${name}: ${result.reason}`);
  }
});

const LEGACY_NEGATIVE: Record<string, string> = {
  'foreign-set': 'GADGET-SIGNATURE-EXPIRED',
  'no-set': 'GADGET-SIGNATURE-TLOG',
  'tampered-payload': 'GADGET-SIGNATURE-DIGEST',
  'tampered-set': 'GADGET-SIGNATURE-TLOG',
  'tampered-signature': 'GADGET-SIGNATURE-INVALID',
};
/**
 * Expected deviation: `signature-1.no-chain` (the chain annotation removed) VERIFIES here.
 * The production trusted root's Fulcio CA lists the intermediate itself, and Sigstore's
 * verifiers (@sigstore/verify, sigstore-go, cosign with a trusted root) build the path from
 * the trusted root, never from a chain the signature brings. It fails only where the trust
 * root holds the Fulcio root alone, as containers/image's fulcio_v1.crt.pem does.
 */
const LEGACY_DEVIATIONS = ['no-chain'];

/** A `.sig` manifest holding the layer of a containers/image "sigstore-json" signature file. */
async function legacyManifestFrom(source: FixtureSource, file: string): Promise<Descriptor> {
  const text = await readFile(file, 'utf8');
  const sig = JSON.parse(text.slice(text.indexOf('{'))) as { mimeType: string; payload: string; annotations: Record<string, string> };
  const payload = source.put(Buffer.from(sig.payload, 'base64'), sig.mimeType);
  const config = source.put(Buffer.from('{}'), 'application/vnd.oci.image.config.v1+json');
  return source.put(encodeJSONBytes({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: [{ ...payload, annotations: sig.annotations }] }), MT_MANIFEST);
}

test('keyless legacy: every tampered copy in derived/negative fails with its rule (no-chain is a recorded deviation)', { skip: !HAVE && 'fixtures absent' }, async () => {
  const f = FORMS.legacy;
  const tag = `sha256-${f.digest.slice(7)}.sig`;
  // The untampered file through the same conversion verifies: the harness itself is sound.
  const control = await FixtureSource.open(f.layout);
  control.tags.set(tag, await legacyManifestFrom(control, path.join(F, 'cosign-legacy', 'signature', 'fixtures', 'dir-img-cosign-fulcio-rekor-valid', 'signature-1')));
  assert.equal((await verifyForm('legacy', keyless(f.identity), control)).verified, true);
  for (const [name, rule] of Object.entries(LEGACY_NEGATIVE)) {
    const source = await FixtureSource.open(f.layout);
    source.tags.set(tag, await legacyManifestFrom(source, path.join(F, 'cosign-legacy', 'derived', 'negative', `signature-1.${name}`)));
    const result = await verifyForm('legacy', keyless(f.identity), source);
    assert.equal(result.verified, false, `${name} must fail`);
    assert.equal(result.rule, rule, `${name}: ${result.reason}`);
  }
  for (const name of LEGACY_DEVIATIONS) {
    const source = await FixtureSource.open(f.layout);
    source.tags.set(tag, await legacyManifestFrom(source, path.join(F, 'cosign-legacy', 'derived', 'negative', `signature-1.${name}`)));
    assert.equal((await verifyForm('legacy', keyless(f.identity), source)).verified, true, `${name}: the recorded deviation changed; update the list`);
  }
});

test('gadget verify --trusted-root: keyless flags on the command line, rule ids in --json, usage errors', { skip: !HAVE && 'fixtures absent' }, async () => {
  const store = path.join(scratch(), 'store');
  assert.equal((await gadget(['--store', store, 'import', FORMS.bundle.layout])).code, 0);
  const ref = '127.0.0.1:60943/repo:tag';
  const base = ['--store', store, 'verify', ref, '--profile', 'ig', '--json', '--trusted-root', PRODUCTION, '--certificate-oidc-issuer', GITHUB];
  // The image is a plain container image, not a gadget (GADGET-CONFIG-TYPE fails it): the
  // signature part of the report is what is checked here.
  const good = JSON.parse((await gadget([...base, '--certificate-identity', 'cody@soyland.com'])).stdout);
  assert.equal(good.images[0].signature.verified, true);
  assert.ok(!good.images[0].findings.some((x: { rule: string }) => x.rule.startsWith('GADGET-SIGNATURE')));
  const wrong = await gadget([...base, '--certificate-identity', 'mallory@example.com']);
  assert.equal(wrong.code, 1);
  const finding = JSON.parse(wrong.stdout).images[0].findings.find((x: { rule: string }) => x.rule.startsWith('GADGET-SIGNATURE'));
  assert.equal(finding.rule, 'GADGET-SIGNATURE-IDENTITY');
  assert.match(finding.message, /mallory@example\.com/);
  const noIssuer = await gadget(['--store', store, 'verify', ref, '--trusted-root', PRODUCTION, '--certificate-identity', 'cody@soyland.com']);
  assert.equal(noIssuer.code, 2);
  assert.match(noIssuer.stderr, /^error: .*--certificate-oidc-issuer/m);
  const noRoot = await gadget(['--store', store, 'verify', ref, '--certificate-identity', 'cody@soyland.com']);
  assert.equal(noRoot.code, 2);
  assert.match(noRoot.stderr, /needs --trusted-root/);
});

test('gadget verify-blob: the keyless attestation over the image manifest verifies; a wrong identity or another file fails', { skip: !HAVE && 'fixtures absent' }, async () => {
  const bundle = path.join(F, 'cosign-bundle', 'pkg', 'cosign', 'testdata', 'oci-attestation.sigstore.json');
  const manifest = path.join(FORMS.bundle.layout, 'blobs', 'sha256', FORMS.bundle.digest.slice(7));
  const pgi = path.join(F, 'cosign-bundle', 'pkg', 'cosign', 'testdata', 'trusted_root_pgi.json');
  const args = (file: string, identity: string): string[] =>
    ['verify-blob', file, '--bundle', bundle, '--trusted-root', pgi, '--certificate-identity', identity, '--certificate-oidc-issuer', GITHUB, '--json'];
  const good = await gadget(args(manifest, 'cody@soyland.com'));
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.equal(JSON.parse(good.stdout).digest, FORMS.bundle.digest);
  const wrong = await gadget(args(manifest, 'mallory@example.com'));
  assert.equal(wrong.code, 1);
  assert.equal(JSON.parse(wrong.stdout).rule, 'GADGET-SIGNATURE-IDENTITY');
  const other = await gadget(args(PRODUCTION, 'cody@soyland.com'));
  assert.equal(other.code, 1);
  assert.equal(JSON.parse(other.stdout).rule, 'GADGET-SIGNATURE-DIGEST');
  assert.match(JSON.parse(other.stdout).reason, /digest mismatch/);
  const text = await gadget(args(PRODUCTION, 'cody@soyland.com').slice(0, -1));
  assert.match(text.stderr, /^error: the signed in-toto statement names sha256:7321.*\(digest mismatch\)$/m);
  assert.doesNotMatch(text.stderr, /\n\s+at /);
});
