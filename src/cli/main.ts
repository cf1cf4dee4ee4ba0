#!/usr/bin/env node
/**
 * The `clusterbus` command (`npx clusterbus status | restart | scale N | metrics`): a client of the
 * management API. The logic is in run.ts; this file only wires it to the process.
 *
 * @module
 */
import { run } from './run.js';

process.exitCode = await run(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
});
