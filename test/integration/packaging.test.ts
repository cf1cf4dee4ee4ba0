/**
 * The package as an app installs it: `node_modules/clusterbus` (its package.json, the CommonJS
 * entry, and the library built from src), next to its dependencies and its zod peer only, loaded
 * by name from real `node` processes with `import` and with `require()`. Needs no `npm run
 * build`: src is transpiled into the temporary package.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Each child gets this long before it is killed (it takes well under a second). */
const CHILD_TIMEOUT_MS = 20_000;

interface Manifest {
  files: string[];
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean } | undefined>;
  devDependencies: Record<string, string>;
}

const manifest = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;
let app: string;

/** Transpiles every module of `from` (TypeScript) into `to` (JavaScript), as `npm run build`. */
async function transpile(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) {
      await transpile(source, path.join(to, entry.name));
    } else if (entry.name.endsWith('.ts')) {
      const { outputText } = ts.transpileModule(await readFile(source, 'utf8'), {
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          verbatimModuleSyntax: true,
        },
      });
      await mkdir(to, { recursive: true });
      await writeFile(path.join(to, entry.name.replace(/\.ts$/, '.js')), outputText);
    }
  }
}

/** Runs `node ...args -e script` in the app's directory; resolves with its exit code and output. */
async function node(
  script: string,
  args: readonly string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...args, '-e', script], {
      cwd: app,
      timeout: CHILD_TIMEOUT_MS,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    };
  }
}

function requiredPeers(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(manifest.peerDependencies).filter(
      ([name]) => manifest.peerDependenciesMeta?.[name]?.optional !== true,
    ),
  );
}

beforeAll(async () => {
  app = await mkdtemp(path.join(os.tmpdir(), 'clusterbus-packaging-'));
  const pkg = path.join(app, 'node_modules', 'clusterbus');
  await mkdir(pkg, { recursive: true });
  await cp(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
  await cp(path.join(ROOT, 'cjs'), path.join(pkg, 'cjs'), { recursive: true });
  await transpile(path.join(ROOT, 'src'), path.join(pkg, 'dist'));
  // What `npm install clusterbus zod` puts next to it: its dependencies and its one required
  // peer; the optional peers (prom-client, @nats-io/*, ...) are left out, as npm leaves them.
  for (const dep of Object.keys({ ...manifest.dependencies, ...requiredPeers() })) {
    await symlink(path.join(ROOT, 'node_modules', dep), path.join(app, 'node_modules', dep), 'dir');
  }
  await writeFile(path.join(app, 'package.json'), '{ "name": "app", "private": true }\n');
});

afterAll(async () => {
  if (app !== undefined) await rm(app, { recursive: true, force: true });
});

describe('package.json', () => {
  it('has zod ^4 as its one required peer dependency (and a dev dependency), not a dependency', () => {
    expect(requiredPeers()).toEqual({ zod: '^4' });
    for (const name of Object.keys(manifest.peerDependencies)) {
      if (name !== 'zod') expect(manifest.peerDependenciesMeta?.[name]).toEqual({ optional: true });
    }
    expect(manifest.dependencies.zod).toBeUndefined();
    expect(manifest.devDependencies.zod).toMatch(/^\^4\./);
  });

  it('exports import and require entries, and ships the CommonJS one', () => {
    expect(manifest.exports['.']).toEqual({
      types: './dist/index.d.ts',
      import: './dist/index.js',
      require: './cjs/index.cjs',
    });
    expect(manifest.files).toEqual(expect.arrayContaining(['dist', 'cjs']));
  });
});

describe('loading clusterbus by name (regressions)', () => {
  it('imports it from an ES module', async () => {
    const out = await node(
      "import('clusterbus').then((m) => console.log(typeof m.startCluster, typeof m.defineContract))",
    );
    expect(out).toMatchObject({ code: 0, stdout: 'function function\n' });
  });

  it.runIf(process.features.require_module === true)(
    'require()s it, as the same module instance import() gives, without a warning',
    async () => {
      const out = await node(`
        const cb = require('clusterbus');
        import('clusterbus').then((esm) => {
          const error = new cb.BusError('CLOSED', 'x');
          console.log(JSON.stringify({
            startCluster: typeof cb.startCluster,
            same: esm.BusError === cb.BusError && esm.defineContract === cb.defineContract,
            instance: error instanceof esm.BusError,
          }));
        });
      `);
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual({
        startCluster: 'function',
        same: true,
        instance: true,
      });
    },
  );

  it('gives a clear ERR_REQUIRE_ESM naming await import() where require() of ES modules is off', async () => {
    // On a Node.js without require(esm) at all, no flag is needed (nor known) to get there.
    const args =
      process.features.require_module === undefined ? [] : ['--no-experimental-require-module'];
    const out = await node(
      "try { require('clusterbus') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }",
      args,
    );
    expect(out.code).toBe(0);
    const error = JSON.parse(out.stdout) as { code: string; message: string };
    expect(error.code).toBe('ERR_REQUIRE_ESM');
    expect(error.message).toContain("await import('clusterbus')");
    expect(error.message).not.toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });
});
