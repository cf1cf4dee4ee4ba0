// PM2: `pm2 start examples/deploy/ecosystem.config.cjs`.
//
// Fork mode with one instance: PM2 watches the primary, and the primary forks the workers
// (clusterbus is its own cluster manager; PM2's cluster mode, `-i N`, is refused).
// - wait_ready: PM2 counts the app online once the primary sends 'ready', which it does when
//   every worker is ready; listen_timeout is above startCluster's readyTimeoutMs (30_000 ms).
// - kill_timeout: on `pm2 stop` / `pm2 restart`, PM2 sends SIGINT, then SIGKILL after this many
//   ms. The primary drains its workers for up to GRACEFUL_SHUTDOWN_TIMEOUT ms first, so this is
//   above it.
// - A rolling restart, one worker at a time with no request dropped (the primary does not exit):
//     pm2 sendSignal SIGUSR2 api
//   (`pm2 reload api` in fork mode stops and starts the whole primary instead.)
module.exports = {
  apps: [
    {
      name: 'api',
      script: 'dist/server.js',
      exec_mode: 'fork',
      instances: 1,
      wait_ready: true,
      listen_timeout: 35_000,
      kill_timeout: 15_000,
      env: {
        NODE_ENV: 'production',
        CLUSTER_WORKERS: '4',
        GRACEFUL_SHUTDOWN_TIMEOUT: '10000',
        PORT: '3000',
      },
    },
  ],
};
