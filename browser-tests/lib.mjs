// Shared launcher for creditd's browser tests: starts the built `creditd serve` on free ports
// with a temporary SQLite database and its built-in Stripe sandbox, runs CLI setup commands,
// signs customer tokens, and launches Debian's Chromium through playwright-core.
//
//   const app = await startCreditd({ env: { CREDITD_LOW_BALANCE_THRESHOLD: '3' },
//                                    setup: [['packages', 'create', '--name', 'Starter', ...]] });
//   const browser = await launchBrowser(t);   // null (test skipped) outside CI without Chromium
//   ...
//   await app.stop();

import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = join(REPO, 'artifacts');

/** The `creditd` binary cargo built: $CREDITD_BIN, $CARGO_TARGET_DIR/debug, or target/debug. */
export function creditdBinary() {
  const candidates = [
    process.env.CREDITD_BIN,
    process.env.CARGO_TARGET_DIR && join(resolve(REPO, process.env.CARGO_TARGET_DIR), 'debug', 'creditd'),
    join(REPO, 'target', 'debug', 'creditd'),
  ].filter(Boolean);
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(`no creditd binary at ${candidates.join(' or ')}: run \`cargo build -p creditd\` first`);
  }
  return found;
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Signs an HS256 JWT, as the app's backend does for its logged-in user. */
export function signHs256(claims, secret) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}`;
  const signature = createHmac('sha256', secret).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `creditd serve` and returns a handle:
 * { url, sandboxUrl, key, jwtSecret, databaseUrl, dir, cli(args), api(method, path, body), token(sub, seconds), stop() }.
 *
 * options.env: extra environment variables for every creditd command.
 * options.setup: CLI commands (argument arrays) run against the database before serving.
 * options.args: extra flags for `serve`.
 */
export async function startCreditd(options = {}) {
  const binary = creditdBinary();
  const dir = mkdtempSync(join(tmpdir(), 'creditd-browser-'));
  const [port, sandboxPort] = [await freePort(), await freePort()];
  const jwtSecret = randomBytes(32).toString('hex');
  const databaseUrl = `sqlite://${join(dir, 'creditd.db')}`;
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    CREDITD_JWT_HS256_SECRET: jwtSecret,
    CREDITD_SANDBOX_STATE: join(dir, 'sandbox.json'),
    CREDITD_LOG: process.env.CREDITD_LOG || 'warn',
    ...options.env,
  };
  delete env.CREDITD_CONFIG;
  const cli = (args) => execFileSync(binary, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const key = cli(['keys', 'create', '--name', 'browser-tests']).trim().split('\n').pop().trim();
  for (const command of options.setup || []) cli(command);

  const url = `http://127.0.0.1:${port}`;
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const server = spawn(
    binary,
    ['serve', '--listen', `127.0.0.1:${port}`, '--sandbox-listen', `127.0.0.1:${sandboxPort}`, ...(options.args || [])],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  server.stdout.on('data', (d) => (output += d));
  server.stderr.on('data', (d) => (output += d));
  let exited = null;
  server.on('exit', (code, signal) => (exited = { code, signal }));

  const stop = async () => {
    if (!exited) {
      server.kill('SIGINT');
      for (let i = 0; i < 50 && !exited; i++) await sleep(100);
      if (!exited) server.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };

  for (let i = 0; ; i++) {
    if (exited) throw new Error(`creditd serve exited (${JSON.stringify(exited)}):\n${output}`);
    try {
      const ready = await fetch(`${url}/readyz`);
      if (ready.ok) break;
    } catch {
      // not listening yet
    }
    if (i > 300) {
      await stop();
      throw new Error(`creditd did not become ready in 30 s:\n${output}`);
    }
    await sleep(100);
  }

  const api = async (method, path, body) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
    return JSON.parse(text);
  };
  const token = (sub, seconds = 3600) =>
    signHs256({ sub, exp: Math.floor(Date.now() / 1000) + seconds }, jwtSecret);

  return { url, sandboxUrl, key, jwtSecret, databaseUrl, dir, cli, api, token, stop, output: () => output };
}

/**
 * Headless Chromium, or null after marking the test skipped when it is missing outside CI.
 * Under CI (`CI` set) a missing or broken Chromium fails the test loudly.
 */
export async function launchBrowser(t) {
  if (!existsSync(CHROMIUM)) {
    const reason = `${CHROMIUM} not found (apt-get install chromium)`;
    if (process.env.CI) throw new Error(`${reason}; browser tests cannot be skipped under CI`);
    t.skip(reason);
    return null;
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Where screenshots go (`artifacts/`, git-ignored). */
export function artifactPath(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
