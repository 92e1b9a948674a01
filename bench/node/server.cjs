'use strict';
// Bare Node.js peer of bench/run.sh: bench/node/work.cjs on node:http, the
// same routes and answers as bench/handwritten.
//
//   node bench/node/server.cjs --addr 127.0.0.1:18201 --jwks-url URL --issuer ISS \
//     --client 'demo|secret|read write|' [--audience flowd-api]
//
// The JWK Set is fetched once at start, as bench/handwritten does.

const http = require('node:http');
const { create, challenge, etagMatch, Reason } = require('./work.cjs');

const MAX_FORM = 1 << 20;

function args(argv) {
  const o = { addr: '127.0.0.1:8092', audience: 'flowd-api', clients: [] };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, ''), v = argv[i + 1];
    if (v === undefined) throw new Error(`--${k} needs a value`);
    if (k === 'client') o.clients.push(v);
    else if (['addr', 'jwks-url', 'issuer', 'audience'].includes(k)) o[k] = v;
    else throw new Error(`unknown flag --${k}`);
  }
  if (!o['jwks-url']) throw new Error('--jwks-url is required');
  if (!o.issuer) o.issuer = new URL(o['jwks-url']).origin;
  return o;
}

function json(res, status, body, extra) {
  const b = Buffer.from(JSON.stringify(body) + '\n');
  res.writeHead(status, {
    ...extra,
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': b.length,
  });
  res.end(b);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > MAX_FORM) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

async function main() {
  const o = args(process.argv);
  const r = await fetch(o['jwks-url']);
  if (!r.ok) throw new Error(`GET ${o['jwks-url']}: ${r.status}`);
  const w = await create({ jwksBody: Buffer.from(await r.arrayBuffer()), issuer: o.issuer, audience: o.audience, clients: o.clients });

  const hello = async (req, res) => {
    try {
      const claims = await w.validate(req.headers.authorization);
      json(res, 200, { hello: claims.sub, scope: claims.scope, claims });
    } catch (e) {
      if (!(e instanceof Reason)) throw e;
      json(res, 401, { error: 'invalid_token', error_description: e.reason }, { 'WWW-Authenticate': challenge(e.reason) });
    }
  };
  const token = (alg) => async (req, res) => {
    let form;
    try {
      form = await readForm(req);
    } catch {
      json(res, 400, { error: 'invalid_request', error_description: 'the body is not a form' }, { Pragma: 'no-cache' });
      return;
    }
    try {
      json(res, 200, await w.issue(alg, form, req.headers.authorization), { Pragma: 'no-cache' });
    } catch (e) {
      if (!e.body) throw e;
      const extra = { Pragma: 'no-cache' };
      if (e.status === 401) extra['WWW-Authenticate'] = 'Basic realm="flowd"';
      json(res, e.status, e.body, extra);
    }
  };
  const routes = {
    'GET /.well-known/jwks.json': (req, res) => {
      const h = {
        'Access-Control-Allow-Origin': '*',
        'Cache-Control': w.jwks.cacheControl,
        ETag: w.jwks.etag,
        'X-Content-Type-Options': 'nosniff',
      };
      const inm = req.headers['if-none-match'];
      if (inm && etagMatch(inm, w.jwks.etag)) {
        res.writeHead(304, h);
        res.end();
        return;
      }
      h['Content-Type'] = 'application/jwk-set+json';
      h['Content-Length'] = w.jwks.length;
      res.writeHead(200, h);
      res.end(w.jwks.body);
    },
    'GET /api/hello': hello,
    'GET /bench/hello-nocache': hello,
    'POST /oauth/token': token('RS256'),
    'POST /bench/token-es256': token('ES256'),
  };
  const server = http.createServer((req, res) => {
    const q = req.url.indexOf('?');
    const route = routes[req.method + ' ' + (q < 0 ? req.url : req.url.slice(0, q))];
    if (!route) {
      json(res, 404, { error: 'not_found' });
      return;
    }
    Promise.resolve(route(req, res)).catch((e) => {
      console.error(e);
      if (!res.headersSent) json(res, 500, { error: 'internal_error' });
    });
  });
  server.keepAliveTimeout = 65000;
  const [host, port] = [o.addr.slice(0, o.addr.lastIndexOf(':')), Number(o.addr.slice(o.addr.lastIndexOf(':') + 1))];
  server.listen(port, host, () => console.error(`bench node: listening on ${o.addr}`));
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
}

main().catch((e) => {
  console.error('bench node:', e.message);
  process.exit(1);
});
