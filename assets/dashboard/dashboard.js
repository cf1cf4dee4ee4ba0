// The clusterbus dashboard: a static page that asks for the management API's token, keeps it in
// sessionStorage, and polls GET /stats with it (as a Bearer header) every second.
/* global uPlot */

const TOKEN_KEY = 'clusterbus.token';
const POLL_MS = 1000;
const WINDOW_S = 300;
const COLORS = [
  '#2e86de',
  '#e67e22',
  '#27ae60',
  '#8e44ad',
  '#c0392b',
  '#16a085',
  '#d35400',
  '#2c3e50',
];
const CHARTS = [
  { id: 'chart-calls', value: (w) => w.callsPerSecond },
  // null when the worker answered no request in its last interval: a gap, not a zero.
  { id: 'chart-callp99', value: (w) => w.callDurationMs?.p99 ?? null },
  { id: 'chart-elp99', value: (w) => w.eventLoopDelayMs?.p99 ?? null },
  { id: 'chart-elp50', value: (w) => w.eventLoopDelayMs?.p50 ?? null },
  { id: 'chart-rss', value: (w) => (w.rssBytes === null ? null : w.rssBytes / 1048576) },
];

const $ = (id) => document.getElementById(id);
let timer;
/** Time (s) and, per chart, per slot, the values: [xs, ...per slot]. */
let history = { slots: [], xs: [], values: CHARTS.map(() => []) };
let plots = [];

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) {
    logout(json.error ?? `HTTP ${res.status}`);
    throw new Error(json.error ?? `HTTP ${res.status}`);
  }
  return { status: res.status, json };
}

function showLogin(message) {
  clearTimeout(timer);
  $('board').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  $('summary').textContent = 'not connected';
  $('token').focus();
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

function start() {
  $('login').hidden = true;
  $('board').hidden = false;
  $('logout').hidden = false;
  poll();
}

async function poll() {
  clearTimeout(timer);
  try {
    const { status, json } = await api('GET', '/stats');
    if (status === 200) render(json);
    else $('summary').textContent = `GET /stats: HTTP ${status}`;
  } catch (error) {
    if (token() === null) return;
    $('summary').textContent = `disconnected: ${error.message}`;
  }
  if (token() !== null) timer = setTimeout(poll, POLL_MS);
}

function mib(bytes) {
  return bytes === null ? '–' : `${(bytes / 1048576).toFixed(1)} MiB`;
}

function ms(n) {
  return n === null || n === undefined ? '–' : n.toFixed(1);
}

function uptime(t) {
  const s = Math.floor(t / 1000);
  return s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m ${s % 60}s`
      : `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`;
}

function cell(row, text, numeric) {
  const td = row.insertCell();
  td.textContent = text;
  if (numeric) td.className = 'num';
}

function render(stats) {
  const p = stats.primary;
  const c = stats.cluster;
  $('summary').textContent =
    `primary ${p.pid} · up ${uptime(p.uptimeMs)} · ${c.workers} workers (${c.active} active, ${c.healthy} healthy; min ${c.min}, max ${c.max ?? '–'}) · restarts ${p.restarts} · crashes ${p.crashes} · spawned ${p.workersSpawned}` +
    (p.requests === null ? '' : ` · requests ${p.requests}`);
  const ok = c.healthy === c.workers;
  $('health').textContent = ok ? 'healthy' : 'unhealthy';
  $('health').className = `badge ${ok ? 'ok' : 'bad'}`;
  const input = $('scale-count');
  if (document.activeElement !== input) input.value = String(c.workers);

  const body = $('workers').tBodies[0];
  body.replaceChildren();
  for (const w of stats.workers) {
    const row = body.insertRow();
    row.dataset.workerId = String(w.workerId);
    row.dataset.slot = String(w.slot);
    if (!w.healthy) row.className = 'unhealthy';
    cell(row, String(w.slot));
    cell(row, String(w.workerId));
    cell(row, String(w.pid ?? '–'));
    cell(row, w.state);
    cell(row, w.healthy ? 'healthy' : 'unhealthy');
    cell(row, mib(w.rssBytes), true);
    cell(row, `${ms(w.eventLoopDelayMs?.p50)} / ${ms(w.eventLoopDelayMs?.p99)} ms`, true);
    cell(row, w.callsPerSecond === null ? '–' : w.callsPerSecond.toFixed(1), true);
    cell(row, String(w.restarts), true);
    cell(row, uptime(w.uptimeMs), true);
  }
  renderOperation(stats);
  record(stats);
}

function renderOperation(stats) {
  const r = stats.restart;
  const s = stats.scale;
  const parts = [];
  if (r !== null)
    parts.push(
      `restart: ${r.state}, ${r.replaced}/${r.total} replaced${r.error ? ` (${r.error.message})` : ''}`,
    );
  if (s !== null)
    parts.push(`scale ${s.from} → ${s.to}: ${s.state}${s.error ? ` (${s.error.message})` : ''}`);
  if (parts.length > 0) $('operation').textContent = parts.join(' · ');
}

/** Adds one point per chart: one value per slot (the slot's serving worker, or the latest). */
function record(stats) {
  const slots = [...new Set(stats.workers.map((w) => w.slot))].sort((a, b) => a - b);
  if (slots.join() !== history.slots.join()) {
    history = { slots, xs: [], values: CHARTS.map(() => slots.map(() => [])) };
    for (const plot of plots) plot.destroy();
    plots = CHARTS.map((chart) => makePlot(chart.id, slots));
  }
  if (plots.length === 0) return;
  const bySlot = new Map();
  for (const w of stats.workers)
    if (w.state !== 'draining' || !bySlot.has(w.slot)) bySlot.set(w.slot, w);
  history.xs.push(stats.at / 1000);
  for (const [i, chart] of CHARTS.entries()) {
    for (const [j, slot] of slots.entries()) {
      history.values[i][j].push(bySlot.has(slot) ? chart.value(bySlot.get(slot)) : null);
    }
  }
  while (history.xs.length > 0 && history.xs[0] < stats.at / 1000 - WINDOW_S) {
    history.xs.shift();
    for (const perSlot of history.values) for (const values of perSlot) values.shift();
  }
  CHARTS.forEach((chart, i) => {
    plots[i].setData([history.xs, ...history.values[i]]);
    $(chart.id).dataset.points = String(history.xs.length);
    // How many of those points hold a value (a chart of nulls has points but no line).
    $(chart.id).dataset.values = String(
      history.values[i].reduce((n, values) => n + values.filter((v) => v !== null).length, 0),
    );
  });
}

function makePlot(id, slots) {
  const el = $(id);
  el.replaceChildren();
  return new uPlot(
    {
      width: Math.max(300, el.clientWidth || 440),
      height: 200,
      series: [
        {},
        ...slots.map((slot, i) => ({
          label: `slot ${slot}`,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          spanGaps: true,
        })),
      ],
      axes: [{}, { size: 50 }],
      scales: { x: { time: true } },
    },
    [[], ...slots.map(() => [])],
    el,
  );
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const value = $('token').value.trim();
  if (value === '') return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $('token').value = '';
  start();
});

$('logout').addEventListener('click', () => logout());

/** Shows what an operation's POST answered: nothing on 202, its error otherwise. */
function answered(what, status, json) {
  $('message').textContent = status === 202 ? '' : `${what}: ${json.error ?? `HTTP ${status}`}`;
}

$('restart').addEventListener('click', async () => {
  const { status, json } = await api('POST', '/restart');
  answered('restart', status, json);
  poll();
});

$('scale').addEventListener('click', async () => {
  const workers = Number($('scale-count').value);
  const { status, json } = await api('POST', '/scale', { workers });
  answered('scale', status, json);
  $('scale-count').blur();
  poll();
});

if (token() === null) showLogin();
else start();
