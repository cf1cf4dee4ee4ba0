import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The subpaths first: an alias also matches as a prefix, and the first match wins.
    alias: {
      'clusterbus/express-rate-limit': fileURLToPath(
        new URL('./src/adapters/express-rate-limit.ts', import.meta.url),
      ),
      'clusterbus/keyv': fileURLToPath(new URL('./src/adapters/keyv.ts', import.meta.url)),
      clusterbus: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Integration tests fork real workers; two files at a time suit the 2-core CI machine.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    typecheck: {
      enabled: true,
      include: ['test/types/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
