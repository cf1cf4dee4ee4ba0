/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core, against
 * a real cluster with the management API on. It loads the page, logs in with the token, sees a row
 * per worker and the charts grow (the p99 call time's with values), presses "Rolling restart" and
 * sees the workers replaced, and takes a screenshot.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartClusterOptions } from '../../src/index.js';
import type { contract } from './fixtures/management-contract.js';
import { stop, until } from './fixtures/supervisor-helpers.js';
import { type App, startManaged, TOKEN } from './management-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present) {
  console.warn(
    `\n!!! ${CHROMIUM} is missing: the dashboard's browser test is SKIPPED (apt-get install -y chromium) !!!\n`,
  );
}

/**
 * Where the screenshot goes: DASHBOARD_SCREENSHOT (kept, to look at), or a temp file removed at
 * the end.
 */
const KEEP = process.env.DASHBOARD_SCREENSHOT;
const SCREENSHOT = KEEP ?? path.join(os.tmpdir(), `clusterbus-dashboard-${process.pid}.png`);

describe.skipIf(!present)('the dashboard in Chromium', () => {
  let app: App;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let calling = true;
  let load: Promise<void>;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    const bounded = { maxWorkers: 3 } as Partial<StartClusterOptions<typeof contract>>;
    app = await startManaged({ health: { intervalMs: 250 }, ...bounded });
    // Some calls, so that calls/s is not flat; slot 1's take 20 ms, for the p99 call time chart.
    load = (async () => {
      while (calling) {
        await Promise.allSettled([
          app.bus.call({ slot: 0 }, 'whoami'),
          app.bus.call({ slot: 1 }, 'sleep', { ms: 20 }),
        ]);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    profile = mkdtempSync(path.join(os.tmpdir(), 'clusterbus-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  }, 60_000);

  afterAll(async () => {
    calling = false;
    await load;
    await context?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    if (KEEP === undefined) rmSync(SCREENSHOT, { force: true });
    await stop(app);
  }, 60_000);

  /** The worker ids of the table's rows, in order. */
  const rowIds = () =>
    page.$$eval('#workers tbody tr', (rows) =>
      rows.map((r) => Number(r.getAttribute('data-worker-id'))),
    );
  const points = async () => Number(await page.getAttribute('#chart-calls', 'data-points'));

  it('GET / is a static shell with no data, served without a token', async () => {
    const res = await fetch(app.management!.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "form-action 'none'"]) {
      expect(csp).toContain(directive);
    }
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    for (const w of app.workers()) expect(html).not.toContain(String(w.pid));
    expect(html).not.toContain(String(process.pid));
    for (const asset of [
      '/assets/uplot.js',
      '/assets/uplot.css',
      '/assets/dashboard.js',
      '/assets/dashboard.css',
    ]) {
      expect(html).toContain(asset);
      const file = await fetch(new URL(asset, app.management!.url));
      expect(file.status, asset).toBe(200);
    }
  });

  it('a wrong token is refused and forgotten; the page asks again', async () => {
    await page.goto(app.management!.url);
    await page.waitForSelector('#login', { state: 'visible' });
    expect(await page.isVisible('#board')).toBe(false);
    await page.fill('#token', 'not-the-token');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#login', { state: 'visible' });
    await until(
      () => page.textContent('#login-error'),
      (text) => /wrong bearer token/.test(text ?? ''),
      'the login error',
    );
    expect(await page.evaluate("sessionStorage.getItem('clusterbus.token')")).toBeNull();
  });

  it('with the token: a row per worker, charts that grow, restart replaces the workers', async () => {
    consoleErrors.length = 0; // the refused token's 401 above is the browser's to log
    await page.goto(app.management!.url);
    await page.waitForSelector('#login', { state: 'visible' });
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#board', { state: 'visible' });
    expect(await page.isVisible('#login')).toBe(false);
    // The token is in this tab's sessionStorage, and never in the URL.
    expect(await page.evaluate("sessionStorage.getItem('clusterbus.token')")).toBe(TOKEN);
    expect(page.url()).toBe(app.management!.url);
    expect(page.url()).not.toContain(TOKEN);

    const before = app.workers().map((w) => w.id);
    await until(rowIds, (ids) => ids.join() === before.join(), 'a row per worker');
    const first = await until(points, (n) => n >= 1, 'the first chart point');
    await until(points, (n) => n >= first + 3, 'the chart grows', 15_000);
    expect(await page.$$('#charts .uplot')).toHaveLength(5);
    // The p99 call time chart gets values (not only points of nulls), a line per slot.
    await until(
      async () => Number(await page.getAttribute('#chart-callp99', 'data-values')),
      (n) => n >= 3,
      'p99 call time values',
      15_000,
    );
    expect(await page.$$eval('#chart-callp99 .u-legend .u-series', (s) => s.length)).toBe(3);
    await until(
      () =>
        page.$$eval('#workers tbody tr td:nth-child(8)', (cells) =>
          cells.map((c) => c.textContent),
        ),
      (cells) => cells.every((c) => c !== '–' && Number(c) > 0),
      'calls/s in every row',
      15_000,
    );

    await page.click('#restart');
    await until(
      rowIds,
      (ids) => ids.length === 2 && ids.every((id) => !before.includes(id)),
      'the workers replaced',
      30_000,
    );
    const after = app.workers().map((w) => w.id);
    expect(after.every((id) => !before.includes(id))).toBe(true);
    await until(
      () => page.textContent('#operation'),
      (text) => /restart: done, 2\/2 replaced/.test(text ?? ''),
      'the restart shown done',
      15_000,
    );
    // Let the charts take a few points after the restart, then look at it.
    const now = await points();
    await until(points, (n) => n >= now + 2, 'more points');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    console.log(`dashboard screenshot: ${SCREENSHOT}`);
    expect(consoleErrors).toEqual([]);
  }, 90_000);

  it('the scale button: above the maximum its 409 shows; within it, a row per new worker', async () => {
    await page.waitForSelector('#board', { state: 'visible' });
    await page.fill('#scale-count', '4');
    await page.click('#scale');
    await until(
      () => page.textContent('#message'),
      (text) =>
        /scale: workers 4 is above the maximum of 3: the worker count is unchanged/.test(
          text ?? '',
        ),
      'the 409 shown',
    );
    expect(app.workers()).toHaveLength(2);
    await page.fill('#scale-count', '3');
    await page.click('#scale');
    await until(rowIds, (ids) => ids.length === 3, 'a third row', 30_000);
    expect(await page.textContent('#message')).toBe('');
    await until(
      () => page.textContent('#operation'),
      (text) => /scale 2 → 3: done/.test(text ?? ''),
      'the scale shown done',
      15_000,
    );
    expect(app.workers().filter((w) => w.state === 'ready')).toHaveLength(3);
    // The charts have a line per slot now.
    await until(
      () => page.$$eval('#chart-rss .u-legend .u-series', (s) => s.length),
      (n) => n === 4,
      'a series per slot (and the time)',
    );
  }, 60_000);
});
