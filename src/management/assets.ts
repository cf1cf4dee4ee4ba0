/**
 * The dashboard's static files: its page, script and style (assets/dashboard/) and uPlot's
 * bundled build (assets/uplot/), read from the package (the same path from src/ and dist/) once,
 * then kept in memory.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';

/** One static file: where it is in the package and its content type. */
interface Asset {
  readonly file: string;
  readonly contentType: string;
}

/** The files the dashboard serves, by URL path. */
export const ASSETS: Readonly<Record<string, Asset>> = {
  '/': { file: 'dashboard/index.html', contentType: 'text/html; charset=utf-8' },
  '/assets/dashboard.js': {
    file: 'dashboard/dashboard.js',
    contentType: 'text/javascript; charset=utf-8',
  },
  '/assets/dashboard.css': {
    file: 'dashboard/dashboard.css',
    contentType: 'text/css; charset=utf-8',
  },
  '/assets/uplot.js': {
    file: 'uplot/uPlot.iife.min.js',
    contentType: 'text/javascript; charset=utf-8',
  },
  '/assets/uplot.css': { file: 'uplot/uPlot.min.css', contentType: 'text/css; charset=utf-8' },
};

/**
 * The page's Content-Security-Policy: its own scripts, styles and API only; no inline script, no
 * form submission (the token never goes into a URL), no framing.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const cache = new Map<string, Promise<Buffer>>();

/** The content of asset `path` (a key of {@link ASSETS}). Rejects if the file cannot be read. */
export function readAsset(asset: Asset): Promise<Buffer> {
  let content = cache.get(asset.file);
  if (content === undefined) {
    content = readFile(new URL(`../../assets/${asset.file}`, import.meta.url));
    content.catch(() => cache.delete(asset.file));
    cache.set(asset.file, content);
  }
  return content;
}
