/** The mesh demo's contract: a hit counter shared by every node, a greeting in the config. */
import { z } from 'zod';
import { defineContract } from '../../src/index.js';

export const contract = defineContract({
  methods: {
    /** The config this worker runs with. */
    config: { output: z.object({ version: z.number(), greeting: z.string() }) },
  },
  stores: { hits: z.number() },
  config: z.object({ greeting: z.string() }),
});
