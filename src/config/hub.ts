/**
 * The hub's side of the config extension: validates the initial config and every update against
 * the contract's schema, numbers the versions, sends each update to every ready worker
 * (`$config.apply`) and gathers their acknowledgements, and reloads a config file (SIGHUP).
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import type { ConfigInput, ConfigValue, Contract } from '../contract.js';
import type { ExtensionContext, PeerId } from '../core/extension.js';
import type { MeshConfig } from '../core/mesh.js';
import { BusError, summarizeIssues, toBusError, toIssues } from '../errors.js';
import { decode, encode } from '../protocol/codec.js';
import {
  type ConfigAck,
  ConfigAnswerSchema,
  type ConfigUpdateResult,
  ConfigVerb,
  type ConfigWelcome,
} from './types.js';

/** A config as it is kept and sent: the codec's form (a fresh value per decode). */
type Encoded = ReturnType<typeof encode>;

/** Default of `configAckTimeoutMs`, in ms. */
export const DEFAULT_CONFIG_ACK_TIMEOUT_MS = 10_000;

/** A worker a config update goes to. */
export interface ConfigTarget {
  readonly workerId: number;
  readonly slot: number;
}

/** What the cluster's config needs from the supervisor. */
export interface ClusterConfigDeps {
  /** The workers to send an update to: ready and not draining. */
  targets(): ConfigTarget[];
  /** Whether the cluster is closing. */
  closing(): boolean;
  /** Told of every completed update. */
  updated(result: ConfigUpdateResult): void;
  /** Told when a catch-up push to a late worker fails. */
  error(error: BusError): void;
  /** Each worker's answer must arrive within this many ms. */
  readonly ackTimeoutMs: number;
  /** The file `reload()` reads (JSON), if any. */
  readonly configFile: string | undefined;
}

/**
 * The cluster's config, found as `app.config`: the current value and version, `update(next)`,
 * and `reload()` from the config file.
 * @category Config
 */
export class ClusterConfig<C extends Contract> {
  private value: unknown;
  private encoded: Encoded | undefined;
  private versionValue = 0;
  /** With a mesh: the shared versions, and this node's name. */
  private mesh: MeshConfig | undefined;
  private meshNode: string | undefined;
  /** The version each worker's welcome carried, until its bus is gone. */
  private readonly welcomed = new Map<PeerId, number>();

  /** @internal Made by the config extension's hub side, after {@link loadInitialConfig}. */
  constructor(
    private readonly ctx: ExtensionContext,
    private readonly contract: C,
    private readonly deps: ClusterConfigDeps,
    initial: { readonly value: unknown; readonly raw: unknown } | undefined,
  ) {
    if (initial !== undefined) {
      this.value = initial.value;
      this.encoded = encode(initial.raw);
      this.versionValue = 1;
    }
    ctx.peers.onGone((id) => this.welcomed.delete(id));
  }

  /** The config in effect, as the contract's schema parsed it (`undefined` without a schema). */
  get current(): ConfigValue<C> {
    return this.value as ConfigValue<C>;
  }

  /** Its version: 1 for the initial config, +1 per accepted `update()`; 0 without a schema. */
  get version(): number {
    return this.versionValue;
  }

  /** The config file `reload()` and SIGHUP read, if `configFile` was given. */
  get file(): string | undefined {
    return this.deps.configFile;
  }

  /**
   * Validates `next` against the contract's config schema, assigns it the next version, sends it
   * to every ready worker (not those draining) and resolves with each one's acknowledgement.
   * Workers forked or becoming ready afterwards start with (or are sent) this version. A worker
   * may refuse (its `onChange` handler threw): it keeps its previous config and is reported as
   * `refused`; the version stays assigned.
   *
   * @param next - the new config, as the schema's input type.
   * @returns `{ version, accepted, workers: [{ workerId, slot, status, error? }] }`.
   * @throws never synchronously; rejects with {@link BusError} `VALIDATION` (with `issues`; nothing
   *   changed, nothing sent), `INVALID_ARGUMENT` for a contract without a config schema or a value
   *   that cannot be encoded, `CLOSED` when the cluster is closing.
   */
  async update(next: ConfigInput<C>): Promise<ConfigUpdateResult> {
    if (this.deps.closing()) {
      throw new BusError('CLOSED', 'config.update: the cluster is closing');
    }
    const schema = this.contract.config;
    if (schema === undefined) {
      throw new BusError('INVALID_ARGUMENT', 'config.update: the contract has no config schema');
    }
    const parsed = schema.safeParse(next);
    if (!parsed.success) {
      throw new BusError(
        'VALIDATION',
        `config.update: the config fails the config schema: ${summarizeIssues(parsed.error.issues, 'config')}`,
        { issues: toIssues(parsed.error.issues) },
      );
    }
    let encoded: Encoded;
    try {
      encoded = encode(next);
    } catch (error) {
      throw toBusError(error, 'INVALID_ARGUMENT', 'config.update: the config cannot be encoded');
    }
    const mesh = this.mesh;
    // With a mesh, the version is the mesh's (compare-and-set in its KV), and every node's
    // workers acknowledge it.
    const version = mesh === undefined ? this.versionValue + 1 : await mesh.claim(next);
    if (version > this.versionValue) {
      this.versionValue = version;
      this.value = parsed.data;
      this.encoded = encoded;
    }
    const targets = [...this.deps.targets()].sort((a, b) => a.slot - b.slot);
    const [local, remote] = await Promise.all([
      Promise.all(targets.map((t) => this.send(t, version, encoded))),
      mesh === undefined ? [] : mesh.spread(version, next),
    ]);
    const node = this.meshNode;
    const workers = [
      ...(node === undefined ? local : local.map((a) => ({ ...a, node }))),
      ...remote,
    ];
    const result: ConfigUpdateResult = {
      version,
      accepted: workers.every((w) => w.status === 'accepted'),
      workers,
    };
    this.deps.updated(result);
    return result;
  }

  /**
   * @internal Joins the mesh's shared config (startCluster, before any worker is forked): this
   * node starts on the mesh's current version if there is one, else writes its initial config
   * as version 1; then serves the versions the other nodes write.
   */
  async joinMesh(mesh: MeshConfig, node: string): Promise<void> {
    if (this.contract.config === undefined) return;
    this.mesh = mesh;
    this.meshNode = node;
    if (mesh.current() === undefined && this.encoded !== undefined) {
      await mesh.claim(decode(this.encoded), true);
    }
    const cur = mesh.current();
    if (cur !== undefined) this.adopt(cur.version, cur.value);
    mesh.serve(async (version, value) => {
      const adopted = this.adopt(version, value);
      const targets = [...this.deps.targets()].sort((a, b) => a.slot - b.slot);
      const acks = await Promise.all(
        targets.map((t) =>
          adopted === undefined
            ? Promise.resolve<ConfigAck>({ workerId: t.workerId, slot: t.slot, status: 'accepted' })
            : this.send(t, version, adopted),
        ),
      );
      return acks.map((a) => ({ ...a, node }));
    });
  }

  /** Takes version `version` from the mesh if newer; returns its encoding, or undefined if not. */
  private adopt(version: number, value: unknown): Encoded | undefined {
    if (version <= this.versionValue) return undefined;
    const parsed = this.contract.config?.safeParse(value);
    if (parsed === undefined || !parsed.success) {
      this.deps.error(
        new BusError(
          'VALIDATION',
          `config version ${version} from the mesh fails this node's config schema; not applied`,
        ),
      );
      return undefined;
    }
    this.versionValue = version;
    this.value = parsed.data;
    this.encoded = encode(value);
    return this.encoded;
  }

  /**
   * Reads the config file again (JSON), validates it and applies it as {@link update} does. What
   * SIGHUP does.
   *
   * @throws never synchronously; rejects with {@link BusError} `INVALID_ARGUMENT` without a
   *   `configFile` or when it cannot be read, `VALIDATION` when it is not JSON or fails the
   *   schema (nothing changed, nothing sent), `CLOSED`.
   */
  async reload(): Promise<ConfigUpdateResult> {
    const file = this.deps.configFile;
    if (file === undefined) {
      throw new BusError('INVALID_ARGUMENT', 'config.reload: no configFile was given');
    }
    return this.update((await readConfigFile(file)) as ConfigInput<C>);
  }

  /** @internal The config worker `id`'s welcome carries: version and value (a fresh copy). */
  welcome(id: PeerId): ConfigWelcome | undefined {
    this.welcomed.set(id, this.versionValue);
    if (this.encoded === undefined) return undefined;
    return { version: this.versionValue, value: decode(this.encoded) };
  }

  /**
   * @internal Sends the current version to a worker that became ready after being welcomed
   * with an older one (an update raced its start): `welcomedVersion`, by default the one its
   * welcome carried.
   */
  catchUp(target: ConfigTarget, welcomedVersion = this.welcomed.get(target.workerId) ?? 0): void {
    const encoded = this.encoded;
    if (encoded === undefined || welcomedVersion >= this.versionValue) return;
    void this.send(target, this.versionValue, encoded).then((ack) => {
      if (ack.error !== undefined && ack.status === 'refused') this.deps.error(ack.error);
    });
  }

  private send(target: ConfigTarget, version: number, encoded: Encoded): Promise<ConfigAck> {
    const { workerId, slot } = target;
    return this.ctx
      .call(
        workerId,
        ConfigVerb.apply,
        { v: version, value: decode(encoded) },
        {
          timeoutMs: this.deps.ackTimeoutMs,
        },
      )
      .then(
        (answer): ConfigAck => {
          const ok = ConfigAnswerSchema.safeParse(answer);
          if (ok.success && ok.data.version >= version) {
            return { workerId, slot, status: 'accepted' };
          }
          return {
            workerId,
            slot,
            status: 'failed',
            error: new BusError(
              'PROTOCOL',
              `worker ${workerId} answered the config update with ${JSON.stringify(answer)}`,
            ),
          };
        },
        (error: unknown): ConfigAck => {
          const e = toBusError(error, 'REMOTE');
          const refused = e.code === 'REMOTE' || e.code === 'VALIDATION';
          return { workerId, slot, status: refused ? 'refused' : 'failed', error: e };
        },
      );
  }
}

/**
 * Validates the initial config: `options.config` if given, else the config file's contents.
 * Resolves with the parsed value and the raw one (what workers are sent), or undefined for a
 * contract without a config schema.
 *
 * @throws rejects with `VALIDATION` (invalid), `INVALID_ARGUMENT` (a config given to a contract
 *   without a schema, or an unreadable file).
 */
export async function loadInitialConfig(
  contract: Contract,
  config: unknown,
  configFile: string | undefined,
): Promise<{ value: unknown; raw: unknown } | undefined> {
  const schema = contract.config;
  if (schema === undefined) {
    if (config !== undefined || configFile !== undefined) {
      throw new BusError(
        'INVALID_ARGUMENT',
        'startCluster: config/configFile given, but the contract has no config schema',
      );
    }
    return undefined;
  }
  const raw =
    config === undefined && configFile !== undefined ? await readConfigFile(configFile) : config;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new BusError(
      'VALIDATION',
      `startCluster: the initial config fails the config schema: ${summarizeIssues(parsed.error.issues, 'config')}`,
      { issues: toIssues(parsed.error.issues) },
    );
  }
  return { value: parsed.data, raw };
}

/** Reads and parses a JSON config file. */
async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new BusError('INVALID_ARGUMENT', `config file ${file} cannot be read: ${String(cause)}`, {
      cause,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new BusError('VALIDATION', `config file ${file} is not valid JSON: ${message}`, {
      cause,
      issues: [{ code: 'invalid_json', path: [], message }],
    });
  }
}
