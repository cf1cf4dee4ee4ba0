/**
 * The shapes of the config extension: a worker's change handler, one worker's acknowledgement,
 * the result of an update, and what travels (`$config.apply`, the welcome's `config` part).
 *
 * @module
 */
import { z } from 'zod';
import type { ConfigValue, Contract } from '../contract.js';
import type { BusError } from '../errors.js';

/** What a change handler is told besides the two values. @category Config */
export interface ConfigChangeInfo {
  /** The version being applied. */
  readonly version: number;
  /** The version it replaces. */
  readonly previousVersion: number;
}

/**
 * A worker's config change handler (`bus.config.onChange`). Throwing or rejecting refuses the
 * change: the worker keeps its previous config, and the primary's result reports the refusal
 * with the error. `bus.config.current` switches only after every handler accepted.
 * @category Config
 */
export type ConfigChangeHandler<C extends Contract> = (
  next: ConfigValue<C>,
  previous: ConfigValue<C>,
  info: ConfigChangeInfo,
) => void | Promise<void>;

/** One worker's answer to a config update. @category Config */
export interface ConfigAck {
  /** Node's worker id. */
  readonly workerId: number;
  /** The worker's stable slot. */
  readonly slot: number;
  /**
   * `accepted`: the worker runs the new version. `refused`: a change handler threw (`REMOTE`)
   * or the worker's schema rejected the value (`VALIDATION`); the worker keeps its previous
   * config. `failed`: no answer (`TIMEOUT`, `TARGET_EXITED`, `NO_TARGET`, `CLOSED`).
   */
  readonly status: 'accepted' | 'refused' | 'failed';
  /** Why, for `refused` and `failed`. */
  readonly error?: BusError;
  /** With a mesh: the node of the worker (`slot` is -1 for a node that did not answer). */
  readonly node?: string;
}

/** What `app.config.update()` resolves with. @category Config */
export interface ConfigUpdateResult {
  /** The version assigned to the new config. */
  readonly version: number;
  /** True when every worker accepted. */
  readonly accepted: boolean;
  /**
   * One entry per worker that was ready (and not draining) when the update was sent, ascending
   * by slot. Workers that become ready later are sent the current version then.
   */
  readonly workers: readonly ConfigAck[];
}

/** @internal The config extension's verbs: `$config.apply`, hub -> worker. */
export const ConfigVerb = { apply: 'apply' } as const;

/** @internal The config extension's part of a welcome, hub -> worker: the current version. */
export interface ConfigWelcome {
  readonly version: number;
  readonly value: unknown;
}

/** @internal The `$config.apply` input, hub -> worker: version and the value (as given). */
export const ConfigMessageSchema = z.object({
  v: z.number().int().positive(),
  value: z.unknown(),
});

/** @internal The `$config.apply` answer: the version the worker runs after it. */
export const ConfigAnswerSchema = z.object({ version: z.number().int().nonnegative() });
