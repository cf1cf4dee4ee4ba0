/** The contract of the thread benchmark: a small task and a buffer moved with transfer. */
import { z } from 'zod';
import { defineContract } from '../../src/contract.js';

export const benchContract = defineContract({
  methods: {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    size: { input: z.object({ buf: z.instanceof(ArrayBuffer) }), output: z.number() },
  },
});
