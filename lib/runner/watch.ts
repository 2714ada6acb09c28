// Watch mode (`gadget build --watch`, `gadget run --watch`): run a round, wait for a change to
// any path the round depends on, let the burst of events settle (an editor's save is several
// events, a `git checkout` hundreds), then run again. A failing round is reported by the round
// itself and the watch goes on; the loop ends when the signal aborts (Ctrl-C).
import { existsSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface WatchOptions {
  signal: AbortSignal;
  /** Quiet time after the last event before the next round (default 200 ms). */
  debounceMs?: number;
}

/** Editors' swap and backup files, which change on every keystroke or save. */
function isEditorNoise(name: string): boolean {
  const base = basename(name);
  return /^\.?#|~$|\.sw[a-p]$|^4913$/.test(base) || base.startsWith('.#');
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Files under `paths` modified after `since` (ms): edits made while the last round ran. */
function modifiedSince(paths: string[], since: number, limit = 10_000): string[] {
  const found: string[] = [];
  const queue = [...paths];
  for (let seen = 0; queue.length && seen < limit; seen++) {
    const p = queue.shift()!;
    try {
      const st = statSync(p);
      if (st.isDirectory()) queue.push(...readdirSync(p).map((n) => join(p, n)));
      else if (st.mtimeMs > since && !isEditorNoise(p)) found.push(p);
    } catch {
      // Gone: nothing to report.
    }
  }
  return found;
}

/**
 * The changed files under `paths` (folders: anything below; files: those files), after the
 * burst. `since`: files modified after it count as changed at once (edits during the round).
 * `onWatching` runs once the watches are in place, so whoever it tells can edit safely.
 */
export function nextChange(paths: string[], opts: WatchOptions & { since?: number; onWatching?: () => void }): Promise<string[]> {
  return new Promise((resolve) => {
    const watchers: FSWatcher[] = [];
    const changed = new Set<string>();
    let timer: NodeJS.Timeout | undefined;
    const named = new Set(paths);
    const finish = (): void => {
      for (const w of watchers) w.close();
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', finish);
      // A file that came and went within the burst (`sed -i`'s temporary copy) changed nothing.
      resolve([...changed].filter((f) => named.has(f) || existsSync(f)));
    };
    opts.signal.addEventListener('abort', finish, { once: true });
    // Files are watched through their folder: editors save by writing a new file and renaming
    // it over the old one, which a watch on the old file's inode would never see.
    const folders = new Map<string, Set<string> | 'all'>();
    for (const p of new Set(paths)) {
      if (isDirectory(p)) folders.set(p, 'all');
      else {
        const names = folders.get(dirname(p));
        if (names === 'all') continue;
        folders.set(dirname(p), (names ?? new Set()).add(basename(p)));
      }
    }
    for (const [folder, names] of folders) {
      try {
        const w = watch(folder, { recursive: names === 'all' }, (_event, file) => {
          const name = file?.toString() ?? '';
          if (names !== 'all' && !names.has(name)) return;
          if (isEditorNoise(name)) return;
          changed.add(join(folder, name));
          clearTimeout(timer);
          timer = setTimeout(finish, opts.debounceMs ?? 200);
        });
        w.on('error', () => undefined); // a folder that vanished: watched again after the next round
        watchers.push(w);
      } catch {
        // Gone already (a deleted header): the next round names what is missing.
      }
    }
    opts.onWatching?.();
    if (opts.signal.aborted) return finish();
    if (opts.since !== undefined) {
      const missed = modifiedSince(paths, opts.since);
      if (missed.length) {
        for (const f of missed) changed.add(f);
        timer = setTimeout(finish, opts.debounceMs ?? 200);
      }
    }
  });
}

export interface Round {
  /** What the round read: watched until the next change. */
  paths: string[];
  /** Reports the round (one line), called once the watches are in place. */
  report(): void;
}

/** Runs `round` (which catches its own errors), then again after every change, until the signal aborts. */
export async function watchLoop(round: (changed: string[]) => Promise<Round>, opts: WatchOptions): Promise<void> {
  let changed: string[] = [];
  while (!opts.signal.aborted) {
    const since = Date.now();
    const { paths, report } = await round(changed);
    if (opts.signal.aborted) break;
    changed = await nextChange(paths, { ...opts, since, onWatching: report });
  }
}
