// Where the CPU of a benchmarked operation goes, from real profiles: the registry's (Go's
// pprof, which docker-registry serves on its debug address) and the client's (node's
// --cpu-prof). Each sample is put in the first category whose test matches its stack, so the
// shares add up to 100% of what was sampled.
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** One sampled stack (leaf first) and the CPU seconds it stands for. */
interface Sample {
  frames: string[];
  seconds: number;
}

export interface Category {
  name: string;
  /** Whether a stack (frame names, leaf first) belongs here. */
  test: (frames: string[]) => boolean;
}

export interface Share {
  name: string;
  seconds: number;
  share: number;
}

/** The categories' CPU seconds and shares; what none matches is "other". */
export function breakdown(samples: Sample[], categories: Category[]): Share[] {
  const seconds = new Map<string, number>();
  let total = 0;
  for (const s of samples) {
    const name = categories.find((c) => c.test(s.frames))?.name ?? 'other';
    seconds.set(name, (seconds.get(name) ?? 0) + s.seconds);
    total += s.seconds;
  }
  return [...categories.map((c) => c.name), 'other']
    .filter((name) => seconds.has(name))
    .map((name) => ({ name, seconds: seconds.get(name)!, share: total ? seconds.get(name)! / total : 0 }));
}

const some = (re: RegExp) => (frames: string[]): boolean => frames.some((f) => re.test(f));
const leaf = (re: RegExp) => (frames: string[]): boolean => re.test(frames[0] ?? '');

/** docker-registry (distribution 2.8): what its request handling spends CPU on. */
export const REGISTRY_CATEGORIES: Category[] = [
  // App.context builds a URL builder per request, and with it every route's regular expression.
  { name: 'route regexps compiled again for every request (v2.NewURLBuilderFromRequest)', test: some(/v2\.NewURLBuilderFromRequest/) },
  { name: 'garbage collector', test: some(/^runtime\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge)/) },
  { name: 'system calls (files, sockets)', test: some(/^syscall\.|runtime\/internal\/syscall/) },
  { name: 'memory allocation', test: leaf(/^runtime\.(mallocgc|memclr|heapBits|nextFreeFast|madvise|growslice)/) },
];

/** This project's CLI under node: start-up, HTTP, files, hashing, SQLite, its own code. */
export const CLIENT_CATEGORIES: Category[] = [
  { name: 'start-up: loading and compiling modules', test: some(/node:internal\/modules\/|node:internal\/bootstrap\/|^compile|^\(program\) /) },
  { name: 'garbage collector', test: leaf(/^\(garbage collector\) /) },
  { name: 'socket writes and reads (system calls)', test: leaf(/^(writeLatin1String|writeUtf8String|writeBuffer|writev|onStreamRead) /) },
  { name: 'files (open, write, fsync, rename, stat)', test: some(/node:internal\/fs\/|node:fs:/) },
  { name: 'SQLite', test: some(/better-sqlite3/) },
  { name: 'SHA-256', test: some(/^(sha256|hashFile) |DigestVerifier|node:internal\/crypto\/hash/) },
  { name: 'HTTP (node:http, sockets, streams)', test: some(/node:_http_|node:https?:|node:net:|node:internal\/streams\/|stream_base_commons/) },
  { name: "this project's own code", test: leaf(/ dist\//) },
];

/** Samples of a node .cpuprofile file (idle left out); frames as "function url:line". */
export function nodeSamples(file: string): Sample[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const micros = new Map<number, number>();
  profile.samples.forEach((id, i) => micros.set(id, (micros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const out: Sample[] = [];
  for (const [id, us] of micros) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const frames: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      frames.push(`${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber}`);
    }
    out.push({ frames, seconds: us / 1e6 });
  }
  return out;
}

/** Every .cpuprofile in a folder (one per process that ran with --cpu-prof-dir). */
export function nodeSamplesIn(dir: string): Sample[] {
  return readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).flatMap((f) => nodeSamples(join(dir, f)));
}

/**
 * Starts a CPU profile of a Go server's `seconds` next seconds (/debug/pprof/profile); the
 * promise gives its samples when the window ends.
 */
export function goProfile(debugHost: string, seconds: number): Promise<Sample[]> {
  return new Promise((resolve, reject) => {
    http.get(`http://${debugHost}/debug/pprof/profile?seconds=${seconds}`, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`pprof answered ${res.statusCode}`));
        else resolve(goSamples(Buffer.concat(chunks)));
      });
      res.on('error', reject);
    }).on('error', reject);
  });
}

// --- pprof's profile.proto, the fields read here ---------------------------------------

type Field = { no: number; value: number | Buffer };

/** The fields of one protobuf message (varints as numbers; 64-bit values fit: ids, nanoseconds). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = buf[at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  };
  while (at < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const type = key & 7;
    if (type === 0) out.push({ no, value: varint() });
    else if (type === 2) {
      const len = varint();
      out.push({ no, value: buf.subarray(at, at + len) });
      at += len;
    } else if (type === 1) at += 8;
    else if (type === 5) at += 4;
    else throw new Error(`unexpected protobuf wire type ${type}`);
  }
  return out;
}

/** A repeated integer field, packed or not. */
function integers(list: Field[], no: number): number[] {
  const out: number[] = [];
  for (const f of list) {
    if (f.no !== no) continue;
    if (typeof f.value === 'number') out.push(f.value);
    else {
      // Packed: a run of varints.
      let at = 0;
      while (at < f.value.length) {
        let value = 0;
        let scale = 1;
        for (;;) {
          const byte = f.value[at++]!;
          value += (byte & 0x7f) * scale;
          if (byte < 0x80) break;
          scale *= 128;
        }
        out.push(value);
      }
    }
  }
  return out;
}

const int = (list: Field[], no: number): number => integers(list, no)[0] ?? 0;

/** Samples of a gzipped pprof CPU profile: frames are function names, inlined ones included. */
export function goSamples(gz: Buffer): Sample[] {
  const profile = fields(gunzipSync(gz));
  const strings = profile.filter((f) => f.no === 6).map((f) => (f.value as Buffer).toString('utf8'));
  const functionNames = new Map<number, string>();
  for (const f of profile) {
    if (f.no !== 5) continue;
    const fn = fields(f.value as Buffer);
    functionNames.set(int(fn, 1), strings[int(fn, 2)] ?? '?');
  }
  const locations = new Map<number, string[]>();
  for (const f of profile) {
    if (f.no !== 4) continue;
    const loc = fields(f.value as Buffer);
    // Lines are innermost first (the inlined call before its caller).
    const lines = loc.filter((l) => l.no === 4).map((l) => functionNames.get(int(fields(l.value as Buffer), 1)) ?? '?');
    locations.set(int(loc, 1), lines);
  }
  // sample_type: the CPU profile's values are [samples count, cpu nanoseconds].
  const types = profile.filter((f) => f.no === 1).map((f) => strings[int(fields(f.value as Buffer), 1)]);
  const cpuAt = Math.max(0, types.indexOf('cpu'));
  return profile
    .filter((f) => f.no === 2)
    .map((f) => {
      const sample = fields(f.value as Buffer);
      const frames = integers(sample, 1).flatMap((id) => locations.get(id) ?? []);
      return { frames, seconds: (integers(sample, 2)[cpuAt] ?? 0) / 1e9 };
    });
}
