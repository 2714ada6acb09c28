// Registry credentials as docker and ig keep them: a config.json (`$DOCKER_CONFIG/config.json`,
// else `~/.docker/config.json`, or ig's `--authfile`) with `auths` (base64 `auth`,
// `username`/`password`, `identitytoken`), `credsStore` and `credHelpers` naming
// `docker-credential-<name>` programs. Secrets never appear in messages.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GadgetError, messageOf } from '../errors.js';
import { refuseCredentials } from '../oci/reference.js';
import { makeFolders } from '../folders.js';

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token realm. */
  identityToken?: string;
}

export interface CredentialOptions {
  /** ig's --authfile: consulted before the docker config. */
  authfile?: string;
  /** Environment for DOCKER_CONFIG, HOME and the PATH of credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  [k: string]: unknown;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const HELPER_TIMEOUT_MS = 30_000;

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json');
  return path.join(env.HOME || os.homedir(), '.docker', 'config.json');
}

/**
 * A registry name as typed (`host`, `host:port`, `https://host/v1/`) as a comparable host name.
 * One with credentials (`user:pass@host`) is refused with a usage error that never shows them.
 */
export function normalizeRegistryHost(name: string): string {
  refuseCredentials(name, 'registry');
  return hostKey(name);
}

/** A config key (`https://host/v1/`, `host`, `host:port`) as a comparable host name. */
function hostKey(key: string): string {
  let h = key.trim().toLowerCase().replace(/^[a-z]+:\/\//, '');
  const slash = h.indexOf('/');
  if (slash >= 0) h = h.slice(0, slash);
  if (h === 'index.docker.io' || h === 'registry-1.docker.io') h = 'docker.io';
  return h;
}

function configKeyFor(host: string): string {
  return hostKey(host) === 'docker.io' ? DOCKER_HUB_KEY : host;
}

async function readConfig(file: string): Promise<ConfigFile | undefined> {
  let text: string;
  try {
    const st = await fs.stat(file);
    if (st.size > MAX_CONFIG_BYTES) throw new GadgetError(`${file}: the credentials file is larger than ${MAX_CONFIG_BYTES} bytes`, { exitCode: 2 });
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof GadgetError) throw err;
    throw new GadgetError(`cannot read the credentials file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { exitCode: 2, hint: 'check its permissions' });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as ConfigFile;
  } catch {
    // Never quote the content: it holds secrets.
    throw new GadgetError(`the credentials file ${file} is not valid JSON`, { exitCode: 2, hint: 'fix or remove it, then run "gadget login" again' });
  }
}

function fromAuthEntry(entry: AuthEntry): Credential | undefined {
  const cred: Credential = {};
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      cred.username = decoded.slice(0, colon);
      cred.password = decoded.slice(colon + 1);
    }
  } else if (typeof entry.username === 'string' && typeof entry.password === 'string') {
    cred.username = entry.username;
    cred.password = entry.password;
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') cred.identityToken = entry.identitytoken;
  return cred.password !== undefined || cred.identityToken !== undefined ? cred : undefined;
}

function findAuthKeys(config: ConfigFile, host: string): string[] {
  const want = hostKey(host);
  return Object.keys(config.auths ?? {}).filter((k) => hostKey(k) === want);
}

function helperFor(config: ConfigFile, host: string): string | undefined {
  const want = hostKey(host);
  for (const [k, v] of Object.entries(config.credHelpers ?? {})) {
    if (hostKey(k) === want && typeof v === 'string' && v !== '') return v;
  }
  return typeof config.credsStore === 'string' && config.credsStore !== '' ? config.credsStore : undefined;
}

async function credentialFromFile(file: string, host: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const config = await readConfig(file);
  if (!config) return undefined;
  const helper = helperFor(config, host);
  if (helper) {
    const cred = await helperGet(helper, configKeyFor(host), file, env);
    if (cred) return cred;
  }
  for (const key of findAuthKeys(config, host)) {
    const cred = fromAuthEntry(config.auths![key]!);
    if (cred) return cred;
  }
  return undefined;
}

/** The credentials for a registry host, or undefined for anonymous access. */
export async function readCredentials(host: string, opts: CredentialOptions = {}): Promise<Credential | undefined> {
  const env = opts.env ?? process.env;
  if (opts.authfile) {
    const cred = await credentialFromFile(opts.authfile, host, env);
    if (cred) return cred;
  }
  return credentialFromFile(dockerConfigPath(env), host, env);
}

// --- credential helpers ---------------------------------------------------------------------

function checkHelperName(name: string, file: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new GadgetError(`${file} names an invalid credential helper "${name.slice(0, 64)}"`, { exitCode: 2, hint: 'a helper name is letters, digits, "_", "." and "-"' });
  }
  return `docker-credential-${name}`;
}

async function runHelper(name: string, action: 'get' | 'store' | 'erase', input: string, file: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string }> {
  const program = checkHelperName(name, file);
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= 1024 * 1024) out.push(b);
    });
    child.stderr.resume(); // helpers may print secrets in diagnostics: never shown
    child.stdin.on('error', () => {}); // a helper that exits early closes its stdin
    child.on('error', (err) => {
      clearTimeout(timer);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new GadgetError(`the credential helper ${program} named in ${file} is not installed`, { exitCode: 2, hint: `install ${program} or remove it from ${file}` }));
      } else {
        reject(new GadgetError(`the credential helper ${program} failed to start: ${messageOf(err)}`, { exitCode: 2 }));
      }
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: sig ? 128 : code ?? 1, stdout: Buffer.concat(out).toString('utf8') });
    });
    child.stdin.end(input);
  });
}

async function helperGet(name: string, serverUrl: string, file: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const { code, stdout } = await runHelper(name, 'get', serverUrl, file, env);
  if (code !== 0) {
    if (/credentials not found/i.test(stdout)) return undefined;
    throw new GadgetError(`the credential helper docker-credential-${name} failed for ${hostKey(serverUrl)} (exit code ${code})`, {
      exitCode: 2,
      hint: `check it with: echo ${serverUrl} | docker-credential-${name} get`,
    });
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    throw new GadgetError(`the credential helper docker-credential-${name} printed something that is not JSON`, { exitCode: 2 });
  }
  if (typeof parsed.Secret !== 'string' || parsed.Secret === '') return undefined;
  const username = typeof parsed.Username === 'string' ? parsed.Username : '';
  // docker's convention: the user name "<token>" marks an identity (refresh) token.
  return username === '<token>' ? { identityToken: parsed.Secret } : { username, password: parsed.Secret };
}

// --- login / logout -------------------------------------------------------------------------

/** Writes a file atomically with mode 0600: a temporary file in the same folder, fsync, rename. */
async function writePrivateFile(file: string, content: string): Promise<void> {
  makeFolders(path.dirname(file), 'give --authfile a file in a folder you may write to', 0o700);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'wx', 0o600);
  try {
    await fh.chmod(0o600); // whatever the umask
    await fh.writeFile(content, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new GadgetError(`cannot write the credentials file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { exitCode: 2 });
  }
}

function serialize(config: ConfigFile): string {
  return JSON.stringify(config, null, '\t') + '\n';
}

export interface LoginResult {
  /** The file that was written or whose helper was used. */
  file: string;
  /** The credential helper that stored the secret, when one is configured. */
  helper?: string;
}

/**
 * Stores credentials for `registry` (host[:port]): through the configured credential helper if
 * there is one, else as `auths[registry].auth` in the config file (written atomically, 0600).
 */
export async function login(registry: string, username: string, password: string, opts: CredentialOptions = {}): Promise<LoginResult> {
  refuseCredentials(registry, 'registry');
  const env = opts.env ?? process.env;
  const file = opts.authfile ?? dockerConfigPath(env);
  if (username === '' || username.includes(':')) {
    throw new GadgetError('the user name must be non-empty and contain no ":"', { exitCode: 2 });
  }
  const config = (await readConfig(file)) ?? {};
  const helper = helperFor(config, registry);
  const key = configKeyFor(registry);
  if (helper) {
    const payload = JSON.stringify({ ServerURL: key, Username: username, Secret: password });
    const { code } = await runHelper(helper, 'store', payload, file, env);
    if (code !== 0) throw new GadgetError(`the credential helper docker-credential-${helper} could not store the credentials for ${registry} (exit code ${code})`, { exitCode: 2 });
    return { file, helper };
  }
  const auths: Record<string, AuthEntry> = { ...(config.auths ?? {}) };
  for (const k of findAuthKeys(config, registry)) delete auths[k];
  auths[key] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  await writePrivateFile(file, serialize({ ...config, auths }));
  return { file };
}

/** Removes the stored credentials for `registry`; false when there were none. */
export async function logout(registry: string, opts: CredentialOptions = {}): Promise<boolean> {
  refuseCredentials(registry, 'registry');
  const env = opts.env ?? process.env;
  const file = opts.authfile ?? dockerConfigPath(env);
  const config = await readConfig(file);
  if (!config) return false;
  let removed = false;
  const helper = helperFor(config, registry);
  if (helper) {
    const { code, stdout } = await runHelper(helper, 'erase', configKeyFor(registry), file, env);
    if (code === 0) removed = true;
    else if (!/credentials not found/i.test(stdout)) {
      throw new GadgetError(`the credential helper docker-credential-${helper} could not erase the credentials for ${registry} (exit code ${code})`, { exitCode: 2 });
    }
  }
  const keys = findAuthKeys(config, registry);
  if (keys.length > 0) {
    const auths = { ...config.auths };
    for (const k of keys) delete auths[k];
    await writePrivateFile(file, serialize({ ...config, auths }));
    removed = true;
  }
  return removed;
}
