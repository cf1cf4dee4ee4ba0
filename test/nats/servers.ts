/**
 * Real nats-server processes for the NATS tests: finds the binary (Debian puts it in
 * /usr/sbin, not always on PATH), starts single servers and 3-server JetStream clusters (routes,
 * so R3 streams) on free ports with temporary storage directories, stops and restarts them.
 * Never the shared server on 4222.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CANDIDATES = [
  process.env.NATS_SERVER_BIN,
  '/usr/sbin/nats-server',
  '/usr/bin/nats-server',
  '/usr/local/bin/nats-server',
];

/** The nats-server binary, or undefined (the tests then skip, saying so loudly). */
export const NATS_SERVER = CANDIDATES.find((p): p is string => p !== undefined && existsSync(p));
if (NATS_SERVER === undefined) {
  console.warn(
    '\n!!! nats-server not found (set NATS_SERVER_BIN): the NATS tests are SKIPPED !!!\n',
  );
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = tcpConnect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server on ${port} not up within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One nats-server process, restartable on the same port and storage. */
export class NatsServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly configFile: string,
    readonly monitorPort: number,
  ) {}

  /**
   * Resolves once the server's /healthz answers 200 (JetStream up and its streams current), or
   * after `ms` with an error.
   */
  async healthy(ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`);
        if (res.status === 200) return;
      } catch {}
      if (Date.now() > deadline)
        throw new Error(`nats-server ${this.name} not healthy within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts it (again) and resolves once its client port accepts connections. */
  async start(): Promise<void> {
    if (this.child !== undefined) return;
    const child = spawn(NATS_SERVER ?? 'nats-server', ['-c', this.configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let tail = '';
    child.stderr?.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    try {
      await waitPort(this.port, 10_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${tail}`);
    }
  }

  /** Stops it: SIGKILL by default (a crash), or SIGTERM. Resolves once it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    child.kill(signal);
    await this.exited;
    this.child = undefined;
  }
}

/** Servers started by one test file, and their storage. */
export class NatsFixture {
  readonly servers: NatsServer[] = [];
  private readonly dirs: string[] = [];

  /** Every server's client URL. */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** One JetStream server (R1 streams only). */
  async single(): Promise<NatsServer> {
    const dir = mkdtempSync(join(tmpdir(), 'cb-nats-'));
    this.dirs.push(dir);
    const port = await freePort();
    const monitor = await freePort();
    const conf = join(dir, 'server.conf');
    writeFileSync(
      conf,
      `port: ${port}\nhost: 127.0.0.1\nhttp_port: ${monitor}\nserver_name: s1\njetstream { store_dir: "${dir}/js" }\n`,
    );
    const s = new NatsServer('s1', port, conf, monitor);
    this.servers.push(s);
    await s.start();
    return s;
  }

  /** A 3-server JetStream cluster (routes between all three; R3 streams). */
  async cluster(size = 3): Promise<NatsServer[]> {
    const dir = mkdtempSync(join(tmpdir(), 'cb-natsc-'));
    this.dirs.push(dir);
    const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
    const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
    const monitors = await Promise.all(Array.from({ length: size }, () => freePort()));
    const made: NatsServer[] = [];
    for (let i = 0; i < size; i++) {
      const conf = join(dir, `n${i}.conf`);
      const others = routes.map((r) => `nats-route://127.0.0.1:${r}`).join(', ');
      writeFileSync(
        conf,
        [
          `port: ${ports[i]}`,
          'host: 127.0.0.1',
          `http_port: ${monitors[i]}`,
          `server_name: n${i}`,
          `jetstream { store_dir: "${dir}/js${i}" }`,
          `cluster { name: cb, host: 127.0.0.1, port: ${routes[i]}, routes: [${others}] }`,
          '',
        ].join('\n'),
      );
      made.push(new NatsServer(`n${i}`, ports[i]!, conf, monitors[i]!));
    }
    this.servers.push(...made);
    await Promise.all(made.map((s) => s.start()));
    return made;
  }

  /** Stops every server and removes their storage. */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
