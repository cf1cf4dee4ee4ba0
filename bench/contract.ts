/**
 * The contract of the clusterbus runs: the same zod schemas the typed birpc variant uses.
 *
 * @module
 */
import { z } from 'zod';
import { defineContract } from '../src/index.js';
import { Job, Payload, Report, StrPayload, Tick } from './schemas.js';

export const contract = defineContract({
  methods: {
    echo: { input: Payload, output: Payload },
    echoStr: { input: StrPayload, output: StrPayload },
    run: { input: Job, output: Report },
  },
  events: { tick: Tick },
  /** Case F: `bus.store('counter').increment(key, by)`. */
  stores: { counter: z.number() },
});
