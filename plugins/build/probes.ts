// Where clang looked for headers, for the build cache. The depfile lists the files clang read,
// not the places it looked first and found nothing (a `#include "b.h"` in sub/a.h looks in sub/
// before the -I folders; `__has_include("x.h")` of a missing x.h reads nothing). Given the same
// bytes in every file read (the deps' hashes) and the same options, clang's output changes only
// when a lookup gives another answer. So every file read is scanned for the header names it
// names (#include, #include_next, #import, __has_include, __has_include_next), and for each
// name every folder it could be looked up in is checked: the including file's own folder for
// "quoted" names, then every search folder. Whether each candidate is a file is recorded;
// any difference at lookup is a miss. Recording all candidates, not just the first found,
// keeps this right whatever order clang really searches in (it drops duplicate and missing
// folders from its list; #include_next starts after the folder the file was found in).
//
// Paths are kept as latin1 strings (one char per byte): a header's name need not be UTF-8.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { depKey, type ProbeRecord } from './cache.js';

export interface ScannedNames {
  /** Header names in double quotes (searched from the including file's folder first). */
  quoted: string[];
  /** Header names in angle brackets. */
  angled: string[];
  /** An include or __has_include whose name is a macro or otherwise not a plain literal. */
  computed?: string;
}

/**
 * The text with line continuations joined and comments blanked; string and char literals kept.
 * A comment is one space, newlines and all (translation phase 3, before directives are seen):
 * a `#` and `include "x.h"` with a comment over two lines between them is one directive to
 * clang, and `f();` with such a comment before `#include` on the next line is none.
 * `keepCommentLines` keeps a comment's newlines instead (see scanNames).
 */
export function withoutComments(text: string, keepCommentLines = false): string {
  // clang also joins a backslash that only spaces separate from its newline (with a warning).
  const src = text.replace(/\\[ \t\f\v]*(?:\r\n|\n|\r)/g, '');
  const parts: string[] = [];
  const next = /\/\*|\/\/|["']/g;
  let i = 0;
  for (let m = next.exec(src); m; m = next.exec(src)) {
    parts.push(src.slice(i, m.index));
    let end: number;
    if (m[0] === '/*') {
      const close = src.indexOf('*/', m.index + 2);
      end = close < 0 ? src.length : close + 2;
      parts.push(' ' + (keepCommentLines ? src.slice(m.index, end).replace(/[^\n]/g, '') : ''));
    } else if (m[0] === '//') {
      const close = src.indexOf('\n', m.index);
      end = close < 0 ? src.length : close;
      parts.push(' ');
    } else {
      // A literal ends at its closing quote or, unterminated (an apostrophe in #error text), at its line's end.
      let j = m.index + 1;
      while (j < src.length && src[j] !== m[0] && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      end = src[j] === m[0] ? j + 1 : Math.min(j, src.length);
      parts.push(src.slice(m.index, end));
    }
    i = end;
    next.lastIndex = end;
  }
  parts.push(src.slice(i));
  return parts.join('');
}

const TRIGRAPHS: Record<string, string> = { '=': '#', '/': '\\', "'": '^', '(': '[', ')': ']', '!': '|', '<': '{', '>': '}', '-': '~' };

// `%:` is the digraph of `#` (C99, always on); directive whitespace may hold form feeds and vertical tabs.
const DIRECTIVE = /^[ \t\f\v]*(?:#|%:)[ \t\f\v]*(?:include_next|include|import)\b[ \t\f\v]*(.*)$/gm;
const HAS_INCLUDE = /\b__has_include(?:_next)?\b/g;

/**
 * The header names a file's text (latin1) names in #include-like directives and __has_include.
 * The text is read as clang reads it (comments one space) and, to be safe where that reading
 * could be wrong, also with each comment's newlines kept, and with trigraphs replaced (`??=`
 * is `#` under -std=c11 and -trigraphs): a name any reading finds is looked up, since a name
 * too many costs at most a rebuild, and one too few an image built from other headers.
 */
export function scanNames(text: string): ScannedNames {
  const readings = [text];
  if (text.includes('??')) readings.push(text.replace(/\?\?([=/'()!<>-])/g, (_m, c: string) => TRIGRAPHS[c]!));
  const quoted = new Set<string>();
  const angled = new Set<string>();
  let computed: string | undefined;
  for (const t of readings) {
    for (const src of [withoutComments(t), withoutComments(t, true)]) computed ??= scanText(src, quoted, angled);
  }
  return { quoted: [...quoted], angled: [...angled], ...(computed !== undefined ? { computed } : {}) };
}

/** Adds the names one comment-free text looks up; returns the first that is not a literal. */
function scanText(src: string, quoted: Set<string>, angled: Set<string>): string | undefined {
  let computed: string | undefined;
  const take = (arg: string, whole: string): void => {
    const q = /^"([^"\n]*)"/.exec(arg);
    const a = q ? null : /^<([^>\n]*)>/.exec(arg);
    if (q) quoted.add(q[1]!);
    else if (a) angled.add(a[1]!);
    else computed ??= whole.trim();
  };
  for (const m of src.matchAll(DIRECTIVE)) take(m[1]!, m[0]);
  for (const m of src.matchAll(HAS_INCLUDE)) {
    const rest = src.slice(m.index! + m[0].length);
    const open = /^\s*\(\s*/.exec(rest);
    // `defined(__has_include)`, `#ifdef __has_include`: asks whether the feature exists, looks nothing up.
    if (!open) continue;
    const arg = rest.slice(open[0].length);
    const lit = /^("[^"\n]*"|<[^>\n]*>)\s*\)/.exec(arg);
    if (lit) take(lit[1]!, '');
    else computed ??= `${m[0]}(${arg.split('\n')[0]!.trim()}`;
  }
  return computed;
}

const toBytes = (latin1: string): Buffer => Buffer.from(latin1, 'latin1');
const fromKey = (key: string): string => (key.startsWith('b64:') ? Buffer.from(key.slice(4), 'base64') : Buffer.from(key, 'utf8')).toString('latin1');
const keyOf = (latin1: string): string => depKey(toBytes(latin1));

function parentOf(file: string): string {
  const slash = file.lastIndexOf('/');
  return slash <= 0 ? '/' : file.slice(0, slash);
}

/** Whether `file` (latin1) is a file clang could open as a header: follows symbolic links; anything else is absent. */
function isFile(file: string): boolean {
  try {
    return statSync(toBytes(file), { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
}

/** A candidate as clang forms it: folder + "/" + name, not normalised (sub/.. through a symlink is the kernel's business). */
function candidate(folder: string, name: string): string {
  return name.startsWith('/') ? name : `${folder}/${name}`;
}

export interface Probed {
  record: ProbeRecord;
  /** The first include or __has_include whose name is not a literal, with the file it is in: such a build is not remembered. */
  computed?: string;
  /** Candidates found as files, for the "appeared while clang ran" check. */
  present: string[];
}

/**
 * Scans every file read (dep keys) and records, for every name it looks up, which of its
 * candidates are files now. `search` is each arch's list of search folders (UTF-8 paths).
 */
export async function probeLookups(deps: string[], search: string[][]): Promise<Probed> {
  const folders = [...new Set(search.flat())].map((f) => Buffer.from(f, 'utf8').toString('latin1'));
  // folder -> names looked up there
  const lookups = new Map<string, Set<string>>();
  const look = (folder: string, name: string): void => {
    if (name === '') return;
    const at = name.startsWith('/') ? '' : folder;
    let names = lookups.get(at);
    if (!names) lookups.set(at, (names = new Set()));
    names.add(name);
  };
  let computed: string | undefined;
  for (const key of deps) {
    const file = fromKey(key);
    let text: string;
    try {
      text = (await readFile(toBytes(file))).toString('latin1');
    } catch {
      continue; // an unreadable dep is a miss by its hash already
    }
    // Most files name no header; the scan is skipped for them (vmlinux.h is megabytes of types).
    if (!/#|%:|\?\?=|__has_include/.test(text)) continue;
    const names = scanNames(text);
    if (names.computed !== undefined && computed === undefined) computed = `${Buffer.from(file, 'latin1').toString('utf8')}: ${names.computed}`;
    for (const name of names.quoted) {
      look(parentOf(file), name);
      for (const folder of folders) look(folder, name);
    }
    for (const name of names.angled) for (const folder of folders) look(folder, name);
  }
  const record: ProbeRecord = [];
  const present: string[] = [];
  for (const [folder, names] of [...lookups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const found: string[] = [];
    const missing: string[] = [];
    for (const name of [...names].sort()) {
      const file = candidate(folder, name);
      if (isFile(file)) {
        found.push(keyOf(name));
        present.push(file);
      } else {
        missing.push(keyOf(name));
      }
    }
    record.push([keyOf(folder), found, missing]);
  }
  return { record, present: present.map(keyOf), ...(computed !== undefined ? { computed } : {}) };
}

/**
 * The first candidate that is a file now and was not at build time, or the other way round;
 * undefined when every lookup would find what it found then.
 */
export function changedLookup(record: ProbeRecord): string | undefined {
  for (const [folderKey, found, missing] of record) {
    const folder = folderKey === '' ? '' : fromKey(folderKey);
    for (const [names, was] of [[found, true], [missing, false]] as const) {
      for (const nameKey of names) {
        const file = candidate(folder, fromKey(nameKey));
        if (isFile(file) !== was) return Buffer.from(file, 'latin1').toString('utf8');
      }
    }
  }
  return undefined;
}

/**
 * Whether a header clang could have found appeared while it ran: a present candidate, or the
 * folder holding it, changed at or after `since` (ms). Such a build may have looked before the
 * header was there, so its image is not remembered.
 */
export function appearedSince(present: string[], since: number): boolean {
  return present.some((key) => {
    const file = fromKey(key);
    return [file, parentOf(file)].some((p) => {
      try {
        const ctime = statSync(toBytes(p), { throwIfNoEntry: false })?.ctimeMs;
        return ctime === undefined || ctime >= since;
      } catch {
        return true;
      }
    });
  });
}
