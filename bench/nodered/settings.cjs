'use strict';
// Node-RED settings for the Node-RED peer of bench/run.sh: no editor, the
// flows of flows.json (one http in -> function -> http response per
// endpoint), and the work of bench/node/work.cjs handed to the function
// nodes as global "bench" (a promise: the JWK Set is fetched and the
// client secrets hashed at start). Environment: BENCH_PORT, BENCH_JWKS_URL,
// BENCH_ISSUER, BENCH_CLIENTS (clients separated by newlines, each
// 'id|secret|scopes|audiences'), BENCH_USERDIR.
const path = require('node:path');
const { create, challenge, etagMatch, formOf, Reason } = require('../node/work.cjs');

const bench = (async () => {
  const r = await fetch(process.env.BENCH_JWKS_URL);
  if (!r.ok) throw new Error(`GET ${process.env.BENCH_JWKS_URL}: ${r.status}`);
  const w = await create({
    jwksBody: Buffer.from(await r.arrayBuffer()),
    issuer: process.env.BENCH_ISSUER,
    audience: 'flowd-api',
    clients: (process.env.BENCH_CLIENTS || '').split('\n').filter(Boolean),
  });
  return { ...w, challenge, etagMatch, formOf, Reason };
})();
bench.catch((e) => {
  console.error('bench nodered:', e.message);
  process.exit(1);
});

module.exports = {
  uiHost: '127.0.0.1',
  uiPort: Number(process.env.BENCH_PORT || 1880),
  httpAdminRoot: false,
  httpNodeRoot: '/',
  userDir: process.env.BENCH_USERDIR,
  flowFile: path.join(__dirname, 'flows.json'),
  flowFilePretty: true,
  credentialSecret: false,
  functionGlobalContext: { bench },
  logging: { console: { level: 'warn', metrics: false, audit: false } },
  diagnostics: { enabled: false },
  runtimeState: { enabled: false },
  telemetry: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false } },
};
