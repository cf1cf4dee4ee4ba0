/** The contract a plain script and its threads share. */
import { defineContract } from 'clusterbus';
import { z } from 'zod';

export const contract = defineContract({
  methods: {
    /** Validates rows and reports the invalid ones by index. */
    validate: {
      input: z.object({ rows: z.array(z.unknown()) }),
      output: z.object({
        valid: z.number(),
        invalid: z.array(z.number()),
        rulesVersion: z.number(),
      }),
    },
    /** Sums the bytes of a buffer, moved to the thread with `transfer`. */
    checksum: { input: z.object({ data: z.instanceof(ArrayBuffer) }), output: z.number() },
  },
  events: {
    'rules.changed': z.object({ version: z.number().int() }),
  },
});
