// Starts a private AxonGate stack for one e2e run: the shared services come from
// `compose/local up`; this run gets its own Postgres database, ClickHouse database, NATS server
// (JetStream in a temporary directory), its own projector, admin-api, ingress and mock upstream
// on free ports, and a small OpenID provider (oidc-provider.mjs) that admin-api's single sign-on
// is configured against. `stop()` ends every process it started, stops the provider and drops the
// databases.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startOidcProvider } from './oidc-provider.mjs';

export const UI_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const REPO = path.resolve(UI_DIR, '..');
/** The team that the provider's group `gateway-leads` makes its members admins of (the flow creates it). */
export const OIDC_TEAM_ID = 'gateway-leads';

function log(message) {
  console.log(`[e2e] ${message}`);
}

/** The `export NAME=value` lines of `.local/env`. */
function readEnvFile(file) {
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1]] = match[2].replace(/^['"]|['"]$/g, '');
  }
  return env;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Waits until `check` resolves truthy, or fails after `timeoutMs` with `what`. */
export async function waitFor(what, check, timeoutMs = 60_000, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
}

function targetDir() {
  if (process.env.CARGO_TARGET_DIR) return process.env.CARGO_TARGET_DIR;
  if (existsSync('/work/target')) return '/work/target';
  return path.join(REPO, 'target');
}

export async function startStack({ build = true } = {}) {
  const processes = [];
  const cleanups = [];
  const runId = `e2e_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const runDir = path.join(UI_DIR, 'e2e', '.run', runId);
  mkdirSync(runDir, { recursive: true });
  const stack = { runId, runDir, processes };

  const stop = async () => {
    for (const child of processes.reverse()) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    await Promise.all(
      processes.map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => {
              child.kill('SIGKILL');
              resolve();
            }, 10_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log(`cleanup: ${error.message}`);
      }
    }
  };
  stack.stop = stop;

  try {
    log('services: compose/local up');
    execFileSync(path.join(REPO, 'compose', 'local'), ['up'], { cwd: REPO, stdio: 'inherit' });
    const home = process.env.AXONGATE_HOME ?? path.join(REPO, '.local');
    const services = readEnvFile(path.join(home, 'env'));

    const target = targetDir();
    if (build) {
      log(`cargo build (target ${target})`);
      execFileSync(
        'cargo',
        ['build', '--bins', '-p', 'axongate-admin-api', '-p', 'axongate-projector', '-p', 'axongate-ingress', '-p', 'axongate-loadtest'],
        {
          cwd: REPO,
          stdio: 'inherit',
          env: { ...process.env, CARGO_TARGET_DIR: target },
        },
      );
    }
    const bin = (name) => path.join(target, 'debug', name);

    // A database of our own in the shared Postgres and ClickHouse.
    const pgUrl = new URL(services.AXONGATE_POSTGRES_URL);
    execFileSync('psql', [services.AXONGATE_POSTGRES_URL, '-q', '-c', `CREATE DATABASE ${runId}`], { stdio: 'inherit' });
    cleanups.push(() =>
      execFileSync('psql', [services.AXONGATE_POSTGRES_URL, '-q', '-c', `DROP DATABASE IF EXISTS ${runId} WITH (FORCE)`], {
        stdio: 'inherit',
      }),
    );
    pgUrl.pathname = `/${runId}`;
    const chUrl = services.AXONGATE_CLICKHOUSE_URL;
    cleanups.push(async () => {
      await fetch(`${chUrl}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${runId}`)}`, { method: 'POST' });
    });

    // A NATS server of our own.
    const natsPort = await freePort();
    const natsDir = mkdtempSync(path.join(tmpdir(), 'axongate-e2e-nats-'));
    cleanups.push(() => rmSync(natsDir, { recursive: true, force: true }));
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'axongate-e2e-spool-'));
    cleanups.push(() => rmSync(spoolDir, { recursive: true, force: true }));

    const launch = (name, command, args, env = {}) => {
      const out = createWriteStream(path.join(runDir, `${name}.log`));
      const child = spawn(command, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      child.on('exit', (code, signal) => {
        if (!stack.stopping) log(`${name} exited (${code ?? signal}); see ${path.join(runDir, `${name}.log`)}`);
      });
      processes.push(child);
      return child;
    };

    launch('nats', path.join(home, 'pip', 'bin', 'nats-server'), ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', natsDir]);
    const ports = { projector: await freePort(), admin: await freePort(), ingress: await freePort(), mock: await freePort() };
    const secrets = {
      AXONGATE_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`,
      AXONGATE_TOKEN_PEPPER: randomBytes(32).toString('base64'),
    };
    const common = {
      AXONGATE_NATS_URL: `nats://127.0.0.1:${natsPort}`,
      AXONGATE_POSTGRES_URL: pgUrl.toString(),
      AXONGATE_CLICKHOUSE_URL: chUrl,
      AXONGATE_CLICKHOUSE_DATABASE: runId,
      AXONGATE_STREAM_REPLICAS: '1',
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    };
    await waitFor(
      'nats',
      () =>
        new Promise((resolve) => {
          const socket = connect(natsPort, '127.0.0.1', () => {
            socket.destroy();
            resolve(true);
          });
          socket.on('error', () => resolve(false));
        }),
      20_000,
    );

    // The OpenID provider first: admin-api reads its discovery document at the first sign-in.
    // The secret has characters that the client must form-encode in its HTTP Basic credentials.
    const adminUrl = `http://127.0.0.1:${ports.admin}`;
    const oidcClient = {
      clientId: 'axongate-e2e',
      clientSecret: `e2e/${randomBytes(12).toString('hex')}+%:=`,
      redirectUri: `${adminUrl}/api/v1/auth/oidc/callback`,
    };
    const oidcLog = createWriteStream(path.join(runDir, 'oidc-provider.log'));
    const oidc = await startOidcProvider({ ...oidcClient, log: (line) => oidcLog.write(`${new Date().toISOString()} ${line}\n`) });
    cleanups.push(async () => {
      await oidc.stop();
      oidcLog.end();
    });

    launch('mock', bin('mock-upstream'), ['--listen', `127.0.0.1:${ports.mock}`]);
    launch('projector', bin('projector'), ['run'], { ...common, AXONGATE_LISTEN: `127.0.0.1:${ports.projector}` });
    const ready = (port) => async () => (await fetch(`http://127.0.0.1:${port}/ready`)).ok;
    await waitFor('projector /ready', ready(ports.projector), 120_000);
    launch('admin-api', bin('admin-api'), ['serve'], {
      ...common,
      ...secrets,
      AXONGATE_LISTEN: `127.0.0.1:${ports.admin}`,
      AXONGATE_UI_DIR: path.join(UI_DIR, 'dist'),
      AXONGATE_NODE_ID: 'e2e-admin',
      // Writes wait for the projector up to a liveness deadline, not 5 s: the machine is shared.
      AXONGATE_READ_YOUR_WRITES_TIMEOUT_MS: '60000',
      AXONGATE_OIDC_ISSUER_URL: oidc.issuer,
      AXONGATE_OIDC_CLIENT_ID: oidcClient.clientId,
      AXONGATE_OIDC_CLIENT_SECRET: oidcClient.clientSecret,
      AXONGATE_OIDC_REDIRECT_URL: oidcClient.redirectUri,
      // The groups of the provider's users (OIDC_USERS there).
      AXONGATE_OIDC_GROUP_ROLES: 'gw-ops=operator',
      AXONGATE_OIDC_GROUP_TEAMS: `gateway-leads=${OIDC_TEAM_ID}:admin`,
      AXONGATE_OIDC_DEFAULT_ROLE: 'member',
    });
    launch('ingress', bin('ingress'), [], {
      ...common,
      ...secrets,
      AXONGATE_LISTEN: `127.0.0.1:${ports.ingress}`,
      AXONGATE_ALLOW_PRIVATE_UPSTREAMS: 'true',
      AXONGATE_SPOOL_DIR: spoolDir,
      AXONGATE_NODE_ID: 'e2e-ingress',
    });
    await waitFor('admin-api /ready', ready(ports.admin), 120_000);
    await waitFor('ingress /ready', ready(ports.ingress), 120_000);
    await waitFor(
      'mock upstream',
      async () => {
        const response = await fetch(`http://127.0.0.1:${ports.mock}/v1/models`, { headers: { authorization: 'Bearer x' } });
        return response.status < 500;
      },
      20_000,
    );

    Object.assign(stack, {
      adminUrl,
      ingressUrl: `http://127.0.0.1:${ports.ingress}`,
      mockBaseUrl: `http://127.0.0.1:${ports.mock}/v1`,
      oidcIssuer: oidc.issuer,
    });
    log(
      `stack up: admin ${stack.adminUrl}, ingress ${stack.ingressUrl}, mock ${stack.mockBaseUrl}, OpenID provider ${oidc.issuer}, logs ${runDir}`,
    );
    const originalStop = stop;
    stack.stop = async () => {
      stack.stopping = true;
      await originalStop();
    };
    return stack;
  } catch (error) {
    stack.stopping = true;
    await stop();
    throw error;
  }
}
