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

/** Values as JSON texts, one at a time. */
export function* stringified(items: Iterable<unknown>): Generator<string> {
  for (const item of items) yield JSON.stringify(item);
}

/** JSON texts as one array, an element per line: `[\n{...},\n{...}\n]` (`[]` when empty). */
function* arrayPieces(texts: Iterable<string>): Generator<string> {
  let first = true;
  for (const text of texts) {
    yield `${first ? '[\n' : ',\n'}${text}`;
    first = false;
  }
  yield first ? '[]' : '\n]';
}

/** JSON texts as one JSON array, the whole answer. */
export function* jsonArray(texts: Iterable<string>): Generator<string> {
  yield* arrayPieces(texts);
  yield '\n';
}

/** JSON texts as JSON lines: one document per line. */
export function* jsonLines(texts: Iterable<string>): Generator<string> {
  for (const text of texts) yield `${text}\n`;
}

/** A JSON object whose last member is a long array, written an element at a time. */
export function* jsonWithArray(head: Record<string, unknown>, key: string, items: Iterable<unknown>): Generator<string> {
  const members = Object.entries(head).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)},`).join('');
  yield `{${members}${JSON.stringify(key)}:`;
  yield* arrayPieces(stringified(items));
  yield '}\n';
}
