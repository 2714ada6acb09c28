// One writer at a time rewrites a bundle. Two syncs into the same tar would each read the old
// file and rename their own over it, and the last rename would drop the images of the other.
// The lock is an IMMEDIATE transaction on `.NAME.tar.lock` beside the tar: an SQLite file,
// which the OS unlocks when its process dies, and which stays (empty) as the store's own lock
// files do. It is asked for without blocking the event loop (an interrupt still ends the wait).
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { GadgetError, messageOf } from '../lib/errors.js';

/** The lock file of the bundle `file`. */
export function bundleLockFile(file: string): string {
  return join(dirname(file), `.${basename(file)}.lock`);
}

const POLL_MS = 50;
const WAIT_MS = 10 * 60 * 1000;

/** Runs `work` while this process alone may write the bundle `file`. */
export async function withBundleLock<T>(file: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  let lock: Database.Database;
  try {
    lock = new Database(bundleLockFile(file));
  } catch (err) {
    throw new GadgetError(`cannot write ${file}: its lock ${bundleLockFile(file)} cannot be made (${messageOf(err)})`, { exitCode: 2, cause: err, hint: 'check the permissions and free space of the folder' });
  }
  try {
    lock.pragma('busy_timeout = 0');
    for (const started = Date.now(); ; ) {
      try {
        lock.exec('BEGIN IMMEDIATE');
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
        if (Date.now() - started > WAIT_MS) {
          throw new GadgetError(`another process has been writing ${file} for ${WAIT_MS / 60_000} minutes`, { hint: 'wait for it to finish, or stop it, then run the command again' });
        }
        await sleep(POLL_MS, undefined, { signal });
      }
    }
    try {
      return await work();
    } finally {
      lock.exec('COMMIT');
    }
  } finally {
    lock.close();
  }
}
