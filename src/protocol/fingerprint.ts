/**
 * Contract fingerprints, for detecting contract drift between the primary and a worker (a rolling
 * deploy that changed a schema). Each method and topic is fingerprinted from zod's JSON Schema of
 * its schemas (types zod cannot express in JSON Schema, such as `Date` or `Map`, are tagged with
 * zod's own type name; descriptions are left out: they do not change what crosses the wire).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Contract, Schema } from '../contract.js';

/** A contract's fingerprint: one short hash per method and topic, and one over all of them. */
export interface Fingerprint {
  /** Hash over every entry. */
  readonly hash: string;
  /** `method:<name>` / `event:<topic>` -> hash of its schemas. */
  readonly entries: Readonly<Record<string, string>>;
}

const cache = new WeakMap<Contract, Fingerprint>();

function schemaText(schema: Schema | undefined, io: 'input' | 'output'): string {
  if (schema === undefined) return 'none';
  try {
    return JSON.stringify(
      z.toJSONSchema(schema, {
        io,
        unrepresentable: 'any',
        override: ({ zodSchema, jsonSchema }) => {
          const js = jsonSchema as Record<string, unknown>;
          delete js.description;
          if (Object.keys(js).length === 0) js['x-zod'] = zodSchema._zod.def.type;
        },
      }),
    );
  } catch {
    // A schema zod cannot describe at all (e.g. a cycle it rejects): fall back to its type name.
    return `zod:${schema._zod.def.type}`;
  }
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16);
}

/** The fingerprint of `contract` (computed once per contract). */
export function fingerprint(contract: Contract): Fingerprint {
  const cached = cache.get(contract);
  if (cached !== undefined) return cached;
  const entries: Record<string, string> = {};
  for (const [name, def] of contract.methods) {
    // A stream method's item schema counts too (absent for the others: their hashes unchanged).
    const stream = def.stream === undefined ? '' : `|stream:${schemaText(def.stream, 'output')}`;
    entries[`method:${name}`] = hash(
      `${schemaText(def.input, 'input')}|${schemaText(def.output, 'output')}${stream}`,
    );
  }
  for (const [topic, schema] of contract.events) {
    entries[`event:${topic}`] = hash(schemaText(schema, 'input'));
  }
  const keys = Object.keys(entries).sort();
  const result: Fingerprint = {
    hash: hash(keys.map((k) => `${k}=${entries[k]}`).join('\n')),
    entries,
  };
  cache.set(contract, result);
  return result;
}

/**
 * What differs between two fingerprints, as readable names: `method 'add' (schemas differ)`,
 * `event 'x' (only in the primary's contract)`. Empty when they match.
 */
export function describeDrift(primary: Fingerprint, worker: Fingerprint): string[] {
  if (primary.hash === worker.hash) return [];
  const out: string[] = [];
  const names = new Set([...Object.keys(primary.entries), ...Object.keys(worker.entries)]);
  for (const key of [...names].sort()) {
    const [kind, ...rest] = key.split(':');
    const label = `${kind} '${rest.join(':')}'`;
    const a = primary.entries[key];
    const b = worker.entries[key];
    if (a === undefined) out.push(`${label} (only in the worker's contract)`);
    else if (b === undefined) out.push(`${label} (only in the primary's contract)`);
    else if (a !== b) out.push(`${label} (schemas differ)`);
  }
  return out;
}
