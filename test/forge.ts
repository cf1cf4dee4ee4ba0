/**
 * A test helper shared by every tier: play a hostile worker that skips its bus and writes a raw
 * request frame on its channel (an in-memory link, or `process.send` in a forked fixture), then
 * reads the answer the primary sends back.
 */
import { BusError, type BusErrorJSON } from '../src/errors.js';
import { Kind, MARKER } from '../src/protocol/envelope.js';

/** The answer to a forged request: its value (plain JSON), or the BusError it failed with. */
export type ForgedAnswer =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: BusError };

/** The channel of the worker that forges: how it sends, and how it hears messages. */
export interface ForgingChannel {
  send(message: unknown): void;
  /** Adds a listener of every message received; returns a function that removes it. */
  onMessage(listener: (message: unknown) => void): () => void;
}

/** This process's IPC channel (in a forked worker), raw: `process.send` and its `message` events. */
export const processChannel: ForgingChannel = {
  send: (message) => process.send?.(message),
  onMessage: (listener) => {
    process.on('message', listener);
    return () => process.off('message', listener);
  },
};

/** Ids far above what a bus uses, so a forged request never collides with the bus's own. */
let nextId = 1_000_000_000;

/**
 * Sends request `method` with plain-JSON `payload` to the primary as a raw frame (marker, kind,
 * id, method, payload, and any `fields` such as a target `t`), and resolves with its answer
 * (found alone or in a batch). Rejects if no answer comes within `ms`.
 */
export function forgeRequest(
  channel: ForgingChannel,
  method: string,
  payload: unknown,
  ms = 10_000,
  fields: Record<string, unknown> = {},
): Promise<ForgedAnswer> {
  const i = nextId++;
  return new Promise<ForgedAnswer>((resolve, reject) => {
    const done = (answer: ForgedAnswer | Error) => {
      clearTimeout(timer);
      off();
      if (answer instanceof Error) reject(answer);
      else resolve(answer);
    };
    const off = channel.onMessage((raw) => {
      for (const frame of framesOf(raw)) {
        if (frame.i !== i) continue;
        if (frame.k === Kind.response) done({ ok: true, value: frame.p });
        if (frame.k === Kind.error) {
          done({ ok: false, error: BusError.fromJSON(frame.e as BusErrorJSON) });
        }
      }
    });
    const timer = setTimeout(
      () => done(new Error(`no answer to the forged '${method}' within ${ms} ms`)),
      ms,
    );
    channel.send({ [MARKER]: 1, k: Kind.request, i, m: method, p: payload, ...fields });
  });
}

interface LooseFrame {
  readonly k?: unknown;
  readonly i?: unknown;
  readonly p?: unknown;
  readonly e?: unknown;
  readonly f?: unknown;
}

/** The frames of one message: itself, or the frames of a batch. */
function framesOf(raw: unknown): LooseFrame[] {
  if (typeof raw !== 'object' || raw === null || !Object.hasOwn(raw, MARKER)) return [];
  const frame = raw as LooseFrame;
  if (frame.k === Kind.batch && Array.isArray(frame.f)) return frame.f as LooseFrame[];
  return [frame];
}
