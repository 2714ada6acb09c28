// Answers that stream: results written to stdout as they are read, a chunk at a time, waiting
// whenever the pipe is full, so that a listing of 100 000 items is never all in memory.
import { once } from 'node:events';
import type { Writable } from 'node:stream';

const CHUNK = 64 * 1024;

/** Writes the pieces as they come (in chunks of about 64 KiB), honouring backpressure. */
export async function writePieces(pieces: Iterable<string>, out: Writable = process.stdout): Promise<void> {
  let chunk = '';
  const flush = async (): Promise<void> => {
    if (chunk && !out.write(chunk)) await once(out, 'drain');
    chunk = '';
  };
  for (const piece of pieces) {
    chunk += piece;
    if (chunk.length >= CHUNK) await flush();
  }
  await flush();
}

/** A JSON array, an element per line: `[\n{...},\n{...}\n]` (`[]` when empty). */
function* arrayPieces(items: Iterable<unknown>): Generator<string> {
  let first = true;
  for (const item of items) {
    yield `${first ? '[\n' : ',\n'}${JSON.stringify(item)}`;
    first = false;
  }
  yield first ? '[]' : '\n]';
}

/** One JSON array as a whole answer. */
export function* jsonArray(items: Iterable<unknown>): Generator<string> {
  yield* arrayPieces(items);
  yield '\n';
}

/** JSON lines: one document per line. */
export function* jsonLines(items: Iterable<unknown>): Generator<string> {
  for (const item of items) yield `${JSON.stringify(item)}\n`;
}

/** A JSON object whose last member is a long array, written an element at a time. */
export function* jsonWithArray(head: Record<string, unknown>, key: string, items: Iterable<unknown>): Generator<string> {
  const members = Object.entries(head).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)},`).join('');
  yield `{${members}${JSON.stringify(key)}:`;
  yield* arrayPieces(items);
  yield '}\n';
}
