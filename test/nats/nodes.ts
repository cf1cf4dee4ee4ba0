/**
 * Nodes of the mesh tests: each a separate process tree (`node --import tsx fixtures/node.ts`, a
 * primary forking its own workers), driven over an IPC channel.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const NODE_FIXTURE = fileURLToPath(new URL('./fixtures/node.ts', import.meta.url));

export type Outcome =
  | { ok: true; value: unknown; elapsedMs: number }
  | { ok: false; code: string; message: string; causeCode?: unknown; elapsedMs: number };

/** One node: a primary process and its workers. */
export class MeshNodeProc {
  private nextId = 1;
  private readonly pending = new Map<number, (o: Outcome) => void>();
  readonly exited: Promise<number | null>;
  private stderr = '';

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.on('message', (m: { id?: number } & Outcome) => {
      if (m.id === undefined) return;
      const settle = this.pending.get(m.id);
      this.pending.delete(m.id);
      settle?.(m);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
      if (process.env.CB_DEBUG) process.stderr.write(d);
    });
    void this.exited.then(() => {
      for (const settle of this.pending.values()) {
        settle({ ok: false, code: 'NODE_EXITED', message: 'the node exited', elapsedMs: 0 });
      }
      this.pending.clear();
    });
  }

  /** Starts node `name` over `urls`; resolves once its cluster is started. */
  static async start(
    name: string,
    urls: string[],
    env: Record<string, string> = {},
  ): Promise<MeshNodeProc> {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_FIXTURE], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: { ...process.env, NATS_URLS: urls.join(','), NODE: name, WORKERS: '2', ...env },
    });
    const node = new MeshNodeProc(name, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`node ${name} not ready in 60 s\n${node.stderr}`)),
        60_000,
      );
      child.on('message', (m: { ready?: boolean }) => {
        if (m.ready === true) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node ${name} exited (${code}) before ready\n${node.stderr}`));
      });
    });
    return node;
  }

  /** Runs `op` in the node's primary. */
  run(op: string, args: Record<string, unknown> = {}, ms = 60_000): Promise<Outcome> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`node ${this.name}: ${op} not answered within ${ms} ms`));
      }, ms);
      this.pending.set(id, (o) => {
        clearTimeout(timer);
        resolve(o);
      });
      if (!this.child.connected) {
        this.pending.delete(id);
        clearTimeout(timer);
        resolve({ ok: false, code: 'NODE_EXITED', message: 'not connected', elapsedMs: 0 });
        return;
      }
      this.child.send({ id, op, args });
    });
  }

  /** Runs `op` and returns its value; throws with the error otherwise. */
  async value<T = unknown>(
    op: string,
    args: Record<string, unknown> = {},
    ms?: number,
  ): Promise<T> {
    const o = await this.run(op, args, ms);
    if (!o.ok) throw new Error(`node ${this.name}: ${op} failed: ${o.code}: ${o.message}`);
    return o.value as T;
  }

  /** Calls `method` on `target` from this node's primary. */
  call(target: unknown, method: string, input?: unknown, timeoutMs?: number): Promise<Outcome> {
    return this.run('call', { target, method, input, timeoutMs });
  }

  /** Kills the primary with SIGKILL (its workers then exit: their IPC channel closes). */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Closes the cluster and waits for the process to exit (killed after 15 s). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    void this.run('close', {}, 15_000).catch(() => {});
    await this.exited;
    clearTimeout(timer);
  }
}
