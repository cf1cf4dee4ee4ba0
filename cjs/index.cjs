// The `require('clusterbus')` entry. clusterbus is an ES module; on a Node.js that can require()
// ES modules (20.19+, 22.12+) this returns it, the very module `import('clusterbus')` gives
// (one copy: `instanceof BusError` holds across both). Elsewhere it throws an error that says
// how to load it.
'use strict';

try {
  module.exports = require('../dist/index.js');
} catch (error) {
  if (error === null || typeof error !== 'object' || error.code !== 'ERR_REQUIRE_ESM') throw error;
  const refusal = new Error(
    'clusterbus is an ES module, and require() of ES modules is not available here (it is by default on Node.js >= 20.19 and >= 22.12). Load it with `const { startCluster, connect } = await import(\'clusterbus\')`, or `import` it from an ES module (.mjs, or "type": "module").',
    { cause: error },
  );
  refusal.code = 'ERR_REQUIRE_ESM';
  throw refusal;
}
