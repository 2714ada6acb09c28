// Basic authentication against an htpasswd file with bcrypt hashes, as docker-registry reads
// it (`htpasswd -Bbn user password`). bcrypt is slow on purpose (tens of ms): a header that
// verified once is remembered by its sha256, so a pull of many blobs pays it once.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { GadgetError } from '../lib/errors.js';

export class Htpasswd {
  private readonly users = new Map<string, string>();
  private readonly verified = new Set<string>();

  constructor(file: string) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new GadgetError(`cannot read the htpasswd file ${file}: ${(err as Error).message}`, { exitCode: 2 });
    }
    for (const [i, line] of text.split('\n').entries()) {
      if (!line.trim() || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const hash = line.slice(colon + 1).trim();
      if (colon <= 0 || !/^\$2[aby]\$\d\d\$/.test(hash)) {
        throw new GadgetError(`${file}:${i + 1} is not "user:bcrypt-hash"`, { exitCode: 2, hint: 'make entries with `htpasswd -Bbn USER PASSWORD` (bcrypt only, as docker-registry)' });
      }
      this.users.set(line.slice(0, colon), hash);
    }
    if (this.users.size === 0) throw new GadgetError(`the htpasswd file ${file} has no users`, { exitCode: 2, hint: 'add one with `htpasswd -Bb FILE USER PASSWORD`' });
  }

  /** The user an Authorization header proves, or undefined. */
  check(header: string | undefined): string | undefined {
    if (!header?.startsWith('Basic ')) return undefined;
    const key = createHash('sha256').update(header).digest('hex');
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    const user = decoded.slice(0, colon);
    if (this.verified.has(key)) return user;
    const hash = this.users.get(user);
    if (!hash || !bcrypt.compareSync(decoded.slice(colon + 1), hash)) return undefined;
    this.verified.add(key);
    return user;
  }
}
