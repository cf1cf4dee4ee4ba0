/**
 * The naive typed stack on birpc (`birpc+zod`): every message serialized with superjson (its
 * object form, `serialize`/`deserialize`, so the IPC channel's JSON is not doubled), and zod
 * validating what arrives: the handler its input, the caller its output, the worker each event.
 *
 * @module
 */
import superjson, { type SuperJSONResult, type SuperJSONValue } from 'superjson';
import { Payload, StrPayload, Tick } from '../schemas.js';
import type { Typing } from './birpc.js';

export const zodTyping: Typing = {
  serialize: (message) => superjson.serialize(message as SuperJSONValue),
  deserialize: (data) => superjson.deserialize(data as SuperJSONResult),
  payload: (value) => Payload.parse(value),
  strPayload: (value) => StrPayload.parse(value),
  tick: (value) => Tick.parse(value),
};
