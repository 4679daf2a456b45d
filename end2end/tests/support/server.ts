// Starts the release binary of twitter-search on a replay file, for one test.
//
// Every test gets its own server: it writes the posts it needs to an NDJSON
// replay file, and may stop and restart the server on the same port (the page
// is expected to reconnect by itself).
//
// Environment:
//   TWITTER_SEARCH_BIN        the server binary (default <repo>/target/release/twitter-search)
//   TWITTER_SEARCH_SITE_ROOT  the built site (default <repo>/target/site)

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** A post as the replay source reads it (see docs/protocol.md, "The post"). */
export interface Post {
  id: string;
  name: string;
  screen_name: string;
  text: string;
  user_profile_image: string;
  url: string | null;
  created_at: string;
  lang: string | null;
  source: string;
  /** Full addresses of links and the byte range of their visible text. */
  links?: Array<{ url: string; start: number; end: number }>;
}

export interface ServerOptions {
  /** Post objects (written as JSON lines) or raw lines (written as they are, to test bad lines). */
  posts: ReadonlyArray<object | string>;
  /** Posts per second (default 10). */
  rate?: number;
  /** Start the file again when it ends (default true). */
  loop?: boolean;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** More command-line arguments for the server. */
  extraArgs?: string[];
}

export interface Server {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  readonly url: string;
  readonly port: number;
  /** The replay file the server reads. */
  readonly replayFile: string;
  /** SIGTERM, wait for the exit, SIGKILL after 5 s. Does nothing when already stopped. */
  stop(): Promise<void>;
  /** Stop (if running), then start again on the same port with the same arguments. */
  restart(): Promise<void>;
  /** Everything the server wrote to stdout and stderr so far (the end of it when long). */
  output(): string;
}

export const REPO_ROOT = path.resolve(__dirname, '../../..');

const HEALTH_TIMEOUT_MS = 20_000;
const HEALTH_POLL_MS = 100;
const STOP_GRACE_MS = 5_000;
const OUTPUT_LIMIT = 200_000;

/** Builds a full post object; `extra` overrides any field. */
export function post(id: string | number, text: string, extra?: Partial<Post>): Post {
  return {
    id: String(id),
    name: 'Name ' + id,
    screen_name: 'user' + id,
    text,
    user_profile_image: '',
    url: null,
    created_at: '2026-11-25T12:00:00Z',
    lang: 'en',
    source: 'replay',
    ...extra,
  };
}

function serverBinary(): string {
  return process.env.TWITTER_SEARCH_BIN || path.join(REPO_ROOT, 'target', 'release', 'twitter-search');
}

function siteRoot(): string {
  return process.env.TWITTER_SEARCH_SITE_ROOT || path.join(REPO_ROOT, 'target', 'site');
}

// Temporary directories and live children of this worker, cleaned up when it
// exits even if a test forgot to stop its server.
const tempDirs = new Set<string>();
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

/** Binds port 0 on 127.0.0.1, reads the port the system chose, closes. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address() as net.AddressInfo;
      probe.close(() => resolve(address.port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the status code of GET `url`, or null when nothing answers. */
function httpStatus(url: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

function replayContent(posts: ReadonlyArray<object | string>): string {
  return posts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('\n') + '\n';
}

class RunningServer implements Server {
  readonly url: string;
  private child: ChildProcess | null = null;
  private alive = false;
  private exited: Promise<void> = Promise.resolve();
  private out = '';

  constructor(
    readonly port: number,
    readonly replayFile: string,
    private readonly args: string[],
    private readonly workDir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  output(): string {
    return this.out;
  }

  private record(chunk: Buffer | string): void {
    this.out += chunk.toString();
    if (this.out.length > OUTPUT_LIMIT) this.out = this.out.slice(this.out.length - OUTPUT_LIMIT);
  }

  private running(): boolean {
    return this.child !== null && this.alive;
  }

  async start(): Promise<void> {
    const bin = serverBinary();
    if (!fs.existsSync(bin)) {
      throw new Error(
        `twitter-search binary not found at ${bin}: build it first (cargo leptos build --release) ` +
          'or set TWITTER_SEARCH_BIN',
      );
    }
    this.record(`\n--- starting ${bin} ${this.args.join(' ')}\n`);
    const child = spawn(bin, this.args, {
      cwd: this.workDir,
      env: { ...process.env, LEPTOS_SITE_ROOT: siteRoot(), RUST_LOG: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.alive = true;
    liveChildren.add(child);
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.record(`--- server exited (code ${code}, signal ${signal})\n`);
        this.alive = false;
        liveChildren.delete(child);
        resolve();
      });
      child.once('error', (err) => {
        // The process could not be started (or could not be signalled).
        this.record(`--- server process error: ${err.message}\n`);
        if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
          this.alive = false;
          liveChildren.delete(child);
          resolve();
        }
      });
    });
    child.stdout?.on('data', (chunk: Buffer) => this.record(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.record(chunk));

    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    for (;;) {
      if (!this.running()) {
        throw new Error(`twitter-search stopped before answering /healthz:\n${this.out}`);
      }
      const status = await httpStatus(`${this.url}/healthz`, 1_000);
      if (status === 200) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(
          `twitter-search did not answer 200 on ${this.url}/healthz within ${HEALTH_TIMEOUT_MS / 1000} s ` +
            `(last status: ${status ?? 'no answer'}). Its output:\n${this.out}`,
        );
      }
      await sleep(HEALTH_POLL_MS);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    if (this.running()) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([this.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
      if (!stopped) {
        this.record(`--- no exit ${STOP_GRACE_MS / 1000} s after SIGTERM, sending SIGKILL\n`);
        child.kill('SIGKILL');
      }
    }
    await this.exited;
    this.child = null;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/** Writes the replay file, starts the server and waits until /healthz answers 200. */
export async function startServer(opts: ServerOptions): Promise<Server> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twitter-search-e2e-'));
  tempDirs.add(workDir);
  const replayFile = path.join(workDir, 'replay.ndjson');
  fs.writeFileSync(replayFile, replayContent(opts.posts));
  const port = opts.port ?? (await freePort());
  const args = [
    '--source',
    'replay',
    '--replay-file',
    replayFile,
    '--addr',
    `127.0.0.1:${port}`,
    '--rate',
    String(opts.rate ?? 10),
  ];
  if (opts.loop ?? true) args.push('--loop');
  args.push(...(opts.extraArgs ?? []));
  const server = new RunningServer(port, replayFile, args, workDir);
  await server.start();
  return server;
}
