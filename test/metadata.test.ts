// gadget.yaml: ig's published files validate unchanged; broken files fail with one
// GadgetError that names the file, the field and the line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GadgetError } from '../lib/errors.js';
import { FIXTURE_METADATA } from './helpers/paths.js';
import { MAX_METADATA_BYTES, formatFieldPath, metadataAnnotations, parseMetadata, readMetadata } from '../lib/gadget/metadata.js';

const fixtures = FIXTURE_METADATA;

const ANN = {
  title: 'org.opencontainers.image.title',
  description: 'org.opencontainers.image.description',
  url: 'org.opencontainers.image.url',
  documentation: 'org.opencontainers.image.documentation',
  source: 'org.opencontainers.image.source',
};

function parse(text: string, file = 'gadget.yaml') {
  return parseMetadata(Buffer.from(text), file);
}

/** Asserts that parsing fails with one GadgetError naming file, line and (when given) field. */
function expectFailure(text: string | Buffer, want: { line?: number; field?: string; includes?: RegExp }): GadgetError {
  const file = 'gadgets/mine/gadget.yaml';
  let caught: unknown;
  try {
    parseMetadata(Buffer.isBuffer(text) ? text : Buffer.from(text), file);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof GadgetError, `expected a GadgetError, got ${String(caught)}`);
  const err = caught as GadgetError;
  assert.ok(err.message.startsWith(`${file}:`), `message names the file: ${err.message}`);
  if (want.line !== undefined) assert.ok(err.message.startsWith(`${file}:${want.line}: `), `line ${want.line} in: ${err.message}`);
  if (want.field !== undefined) assert.ok(err.message.includes(want.field), `field ${want.field} in: ${err.message}`);
  if (want.includes) assert.match(err.message, want.includes);
  assert.ok(err.hint && err.hint.length > 0, 'has a hint');
  assert.equal(err.exitCode, 1);
  return err;
}

test('every gadget.yaml published by ig parses and validates unchanged', (t) => {
  if (!existsSync(fixtures)) {
    t.skip(`fixtures not found at ${fixtures}`);
    return;
  }
  const files = readdirSync(fixtures).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 20, `found ${files.length} fixture files`);
  for (const f of files) {
    const bytes = readFileSync(path.join(fixtures, f));
    const meta = parseMetadata(bytes, f);
    assert.equal(typeof meta.name, 'string', f);
    assert.ok(meta.name!.length > 0, `${f} has a name`);
    assert.match(meta.homepageURL ?? '', /^https?:\/\//, `${f} homepageURL`);
    const ann = metadataAnnotations(meta);
    assert.equal(ann[ANN.title], meta.name, f);
    assert.equal(ann[ANN.source], meta.sourceURL, f);
  }
});

test('fixtures: non-string values are read as ig reads them', (t) => {
  if (!existsSync(fixtures)) {
    t.skip(`fixtures not found at ${fixtures}`);
    return;
  }
  // `enable-containers-datasource: true` becomes the annotation value "true", like Go's yaml.v2.
  const containers = parseMetadata(readFileSync(path.join(fixtures, 'datasource-containers.yaml')), 'x');
  assert.deepEqual(containers.annotations, { 'enable-containers-datasource': 'true' });
  // Folded plain scalars keep yaml's folding.
  const ssl = parseMetadata(readFileSync(path.join(fixtures, 'trace_ssl.yaml')), 'x');
  assert.equal(ssl.description, 'Captures data on read/recv or write/send functions of OpenSSL, GnuTLS, NSS and Libcrypto');
  // Other sections keep their parsed values.
  const exec = parseMetadata(readFileSync(path.join(fixtures, 'trace_exec.yaml')), 'x');
  const datasources = exec.datasources as Record<string, { fields: Record<string, unknown> }>;
  assert.ok(datasources.exec!.fields.cwd);
});

test('metadataAnnotations writes the five OCI keys in order, empty when missing, then overrides', () => {
  const meta = parse('name: demo\nsourceURL: https://example.com/src\nannotations:\n  org.opencontainers.image.url: https://override\n  extra: 1\n');
  const ann = metadataAnnotations(meta);
  assert.deepEqual(Object.keys(ann), [ANN.title, ANN.description, ANN.url, ANN.documentation, ANN.source, 'extra']);
  assert.equal(ann[ANN.title], 'demo');
  assert.equal(ann[ANN.description], '');
  assert.equal(ann[ANN.documentation], '');
  assert.equal(ann[ANN.url], 'https://override');
  assert.equal(ann.extra, '1');
  assert.deepEqual(metadataAnnotations({}), { [ANN.title]: '', [ANN.description]: '', [ANN.url]: '', [ANN.documentation]: '', [ANN.source]: '' });
});

test('plain values become the text Go yaml.v2 stores', () => {
  const meta = parse(
    [
      'name: 123',
      'description: ~',
      'homepageURL: "quoted: yes"',
      'annotations:',
      '  float: 1.0',
      '  hex: 0x10',
      '  yes11: yes',
      '  bool: false',
      '  empty:',
      '  nul: null',
      '  "quoted": "1.0"',
      '',
    ].join('\n'),
  );
  assert.equal(meta.name, '123');
  assert.equal(meta.description, '');
  assert.equal(meta.homepageURL, 'quoted: yes');
  assert.deepEqual(meta.annotations, { float: '1.0', hex: '0x10', yes11: 'yes', bool: 'false', empty: '', nul: '', quoted: '1.0' });
});

test('merge keys inside annotations are applied, explicit keys win', () => {
  const meta = parse('paramDefaults: &c\n  a: one\n  b: two\nannotations:\n  <<: *c\n  b: mine\nname: &n demo\ndescription: *n\n');
  assert.deepEqual(meta.annotations, { b: 'mine', a: 'one' });
  assert.equal(meta.description, 'demo');
});

test('the pre-datasource format (tracers, structs, ebpfParams) still validates', () => {
  const meta = parse(
    [
      'name: trace exec',
      'description: trace process executions',
      'tracers:',
      '  exec:',
      '    mapName: events',
      '    structName: event',
      'structs:',
      '  event:',
      '    fields:',
      '    - name: pid',
      '      attributes: {width: 7, alignment: right}',
      'ebpfParams:',
      '  ignore_failed:',
      '    key: ignore-failed',
      '    defaultValue: "true"',
      '',
    ].join('\n'),
  );
  assert.equal(meta.name, 'trace exec');
  assert.ok(meta.tracers);
});

test('wrong type for name', () => {
  const err = expectFailure('description: d\nname: [a, b]\n', { line: 2, field: 'name', includes: /must be a plain value.*but it is a list/ });
  assert.match(err.hint!, /single value/);
  expectFailure('name:\n  first: a\n', { line: 1, field: 'name', includes: /but it is a mapping/ });
});

test('a list where a mapping belongs names the full field path and its line', () => {
  const text = [
    'name: x', // 1
    'datasources:', // 2
    '  events:', // 3
    '    fields:', // 4
    '      pid:', // 5
    '        annotations:', // 6
    '          - columns.width', // 7
    '',
  ].join('\n');
  expectFailure(text, { line: 6, field: 'datasources.events.fields.pid.annotations', includes: /must be a mapping, but it is a list/ });
  expectFailure('name: x\ndatasources:\n  - events\n', { line: 2, field: 'datasources', includes: /must be a mapping/ });
  // Duplicate keys: the last counts (as in Go's yaml), and the error names its line and value.
  expectFailure('name: x\nparams:\n  ebpf: {}\ndescription: d\nparams: 5\n', { line: 5, field: 'params', includes: /must be a mapping, but it is a number \(5\)/ });
});

test('an annotation value that is a list or a mapping is rejected, as ig rejects it', () => {
  const err = expectFailure('name: x\nannotations:\n  ok: 1\n  bad: [a, b]\n', { line: 4, field: 'annotations.bad', includes: /but it is a list/ });
  assert.match(err.hint!, /annotation values are strings/);
  const text = 'name: x\ndatasources:\n  ev:\n    fields:\n      f:\n        annotations:\n          columns.width:\n            nested: 1\n';
  expectFailure(text, { line: 7, field: 'datasources.ev.fields.f.annotations["columns.width"]', includes: /but it is a mapping/ });
});

test('unknown keys are accepted as ig accepts them, each a warning with its line and suggestion', () => {
  const file = 'gadgets/mine/gadget.yaml';
  const warn = (text: string) => readMetadata(Buffer.from(text), file).warnings;
  const [typo] = warn('name: x\ndescriptoin: d\n');
  assert.match(typo!.message, /^gadgets\/mine\/gadget\.yaml:2: unknown top-level key "descriptoin"/);
  assert.match(typo!.hint, /did you mean "description"/);
  assert.match(warn('name: x\nhomepageUrl: https://example.com\n')[0]!.hint, /did you mean "homepageURL"/);
  const [ds] = warn('name: x\ndatasources:\n  ev:\n    annotations: {}\n    field: {}\n');
  assert.match(ds!.message, /:5: datasources\.ev has an unknown key "field"/);
  const [f] = warn('name: x\ndatasources:\n  ev:\n    fields:\n      pid:\n        width: 3\n');
  assert.match(f!.message, /:6: datasources\.ev\.fields\.pid has an unknown key "width"/);
  // profile_cpu's run-time key: parsed, kept, reported.
  const { meta, warnings } = readMetadata(Buffer.from('name: p\nprograms:\n  a: {}\n'), file);
  assert.deepEqual(meta.programs, { a: {} });
  assert.equal(warnings.length, 1);
  assert.deepEqual(warn('name: x\ndescription: fine\n'), []);
});

test('params: a list where ig expects a string is rejected', () => {
  expectFailure('name: x\nparams:\n  ebpf:\n    p:\n      key: [a]\n', { line: 5, field: 'params.ebpf.p.key' });
});

test('invalid YAML syntax gives the line', () => {
  const err = expectFailure('name: x\ndatasources:\n  ev:\n    fields: [a, b\n', { line: 4, includes: /invalid YAML/ });
  assert.match(err.message, /datasources/);
  expectFailure('name: "unterminated\n', { line: 1, includes: /invalid YAML/ });
});

test('duplicate keys: the last wins, as in ig', () => {
  const meta = parseMetadata(Buffer.from('name: a\ndescription: d\nname: b\nannotations:\n  k: 1\n  k: 2\n'), 'gadget.yaml');
  assert.equal(meta.name, 'b');
  assert.equal(metadataAnnotations(meta)['org.opencontainers.image.title'], 'b');
  assert.deepEqual(meta.annotations, { k: '2' });
});

test('a "billion laughs" alias bomb fails fast without expanding', () => {
  const lines = ['name: lol', 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i <= 9; i++) lines.push(`l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(',')}]`);
  // Fully expanded this is 9^10 strings (billions); the guard stops at the alias limit.
  const err = expectFailure(lines.join('\n') + '\n', { line: 3, field: 'l1', includes: /aliases/ });
  assert.match(err.message, /billion laughs/);
  assert.ok(process.memoryUsage().heapUsed < 1024 * 1024 * 1024, 'heap stayed small');
});

test('a file that is not a mapping', () => {
  expectFailure('- name: x\n- description: y\n', { line: 1, includes: /must be a YAML mapping.*a list/ });
  expectFailure('just text\n', { line: 1, includes: /must be a YAML mapping.*a string/ });
  expectFailure('', { line: 1, includes: /must be a YAML mapping.*empty/ });
  expectFailure('# only a comment\n', { line: 1, includes: /empty/ });
});

test('oversized, non-UTF-8 and multi-document files are refused', () => {
  const big = Buffer.alloc(MAX_METADATA_BYTES + 1, 0x20);
  big.write('name: x\n');
  expectFailure(big, { includes: /more than the 1048576 allowed/ });
  expectFailure(Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xff, 0xfe, 0x0a]), { includes: /not valid UTF-8/ });
  expectFailure('name: a\n---\nname: b\n', { line: 2, includes: /more than one YAML document/ });
});

test('formatFieldPath quotes keys that contain dots', () => {
  assert.equal(formatFieldPath(['datasources', 'ev', 'fields', 'proc.comm', 'annotations']), 'datasources.ev.fields["proc.comm"].annotations');
  assert.equal(formatFieldPath(['structs', 'event', 'fields', 0]), 'structs.event.fields[0]');
});

test('an annotation named __proto__ is kept as a plain key', () => {
  const meta = parse('name: x\nannotations:\n  __proto__: polluted\n');
  assert.equal(Object.getOwnPropertyDescriptor(meta.annotations, '__proto__')?.value, 'polluted');
  const ann = metadataAnnotations(meta);
  assert.ok(Object.keys(ann).includes('__proto__'));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('runaway nesting is refused without crashing', () => {
  const deep = 'name: x\noperator:\n  a: ' + '['.repeat(50000) + ']'.repeat(50000) + '\n';
  expectFailure(deep, { line: 3, includes: /nests too deeply/ });
});

test('the first problem is reported with the number of others', () => {
  expectFailure('name: [1]\ndescription: [2]\nsourceURL: {}\n', { line: 1, field: 'name', includes: /\(2 more problem\(s\) after this one\)/ });
});
