/**
 * What a clusterbus primary tells the workers it forks, through their environment, and what a
 * worker reads there: whether its primary is clusterbus (exactly: the variable holds the pid of
 * this process's parent), which signals that primary handles, and whether another cluster manager
 * (PM2's cluster mode) forked this process instead.
 *
 * @module
 */

/** Set by a clusterbus primary in each worker it forks: the primary's pid. */
export const PRIMARY_ENV = 'CLUSTERBUS_PRIMARY';
/** Set by a clusterbus primary in each worker it forks: the signals it handles, comma-separated. */
export const SIGNALS_ENV = 'CLUSTERBUS_SIGNALS';

/** @internal The variables a clusterbus primary adds to a worker's environment. */
export function workerEnv(handledSignals: readonly NodeJS.Signals[]): Record<string, string> {
  return { [PRIMARY_ENV]: String(process.pid), [SIGNALS_ENV]: handledSignals.join(',') };
}

/**
 * @internal Whether this process was forked by a clusterbus primary: the variable names its
 * parent (a grandchild that inherited it, or a worker of another cluster, does not match).
 */
export function forkedByClusterbus(
  env: NodeJS.ProcessEnv = process.env,
  ppid: number = process.ppid,
): boolean {
  return env[PRIMARY_ENV] === String(ppid);
}

/** @internal The signals this worker's clusterbus primary handles; none if it is not one. */
export function primarySignals(env: NodeJS.ProcessEnv = process.env): NodeJS.Signals[] {
  if (!forkedByClusterbus(env)) return [];
  const list = env[SIGNALS_ENV] ?? '';
  return list === '' ? [] : (list.split(',') as NodeJS.Signals[]);
}

/**
 * @internal Whether PM2's environment says this process runs in PM2's cluster mode
 * (`exec_mode: 'cluster_mode'`, or PM2's instance variables without an `exec_mode`).
 */
export function pm2ClusterMode(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.exec_mode !== undefined) return env.exec_mode === 'cluster_mode';
  return env.pm_id !== undefined || env.NODE_APP_INSTANCE !== undefined;
}

/** @internal What to tell someone who runs clusterbus under PM2's cluster mode. */
export const PM2_CLUSTER_MODE_HINT =
  "this process was forked by PM2's cluster mode (exec_mode 'cluster_mode', `pm2 start -i N`), " +
  'not by clusterbus. clusterbus is its own cluster manager: run the app with PM2 in fork mode ' +
  "(exec_mode: 'fork', one instance), where clusterbus is the primary and forks the workers " +
  '(`workers` option)';
