// Interop: panva's openid-client 6 (an independent OAuth 2.0 / OpenID
// Connect client) against a live flowd built from this checkout, for DPoP
// (RFC 9449), PAR (RFC 9126) and private_key_jwt (RFC 7523).
//
// Run: npm ci && node --test   (needs Go on PATH to build flowd)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as client from 'openid-client';

const repo = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'flowd-interop-'));
const bin = join(work, 'flowd');
const data = join(work, 'data');
const env = { ...process.env, FLOWD_DATA: data };
const redirectURI = 'http://127.0.0.1:9/cb';
const password = 'correct horse battery staple';
let server;
let issuer;

function flowd(...args) {
  return execFileSync(bin, args, { env, encoding: 'utf8' });
}

before(async () => {
  execFileSync('go', ['build', '-o', bin, './cmd/flowd'], { cwd: repo, stdio: 'inherit' });
  server = spawn(bin, ['serve', '--addr', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let errors = '';
  server.stderr.on('data', (d) => { errors += d; });
  issuer = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`flowd did not start: ${out} ${errors}`)), 30000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/flowd listening on (https?:\/\/\S+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    server.on('exit', (code) => fail(new Error(`flowd exited with ${code}: ${out} ${errors}`)));
  });
  // The key-rollover flow makes keyset main at start.
  for (let i = 0; ; i++) {
    const r = await fetch(`${issuer}/.well-known/jwks.json`);
    if (r.status === 200) break;
    if (i > 300) throw new Error('keyset main never appeared');
    await new Promise((r) => setTimeout(r, 100));
  }
  flowd('users', 'add', '--username', 'ada', '--password', password, '--email', 'ada@example.com');
  flowd('clients', 'add', '--id', 'spa', '--public', '--first-party', '--scopes', 'openid profile', '--redirect-uris', redirectURI);
});

after(() => {
  server?.kill();
  rmSync(work, { recursive: true, force: true });
});

const insecure = { execute: [client.allowInsecureRequests] };

// Signs ada in at an authorization URL the way a browser would: the
// sign-in form (its sealed cookie and CSRF token), then the redirect.
async function signIn(authorizationURL) {
  const page = await fetch(authorizationURL, { redirect: 'manual' });
  assert.equal(page.status, 200, 'the sign-in form');
  const html = await page.text();
  const field = (name) => {
    const m = html.match(new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`));
    assert.ok(m, `form field ${name}`);
    return m[1].replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&')
      .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCharCode(parseInt(n, 16)));
  };
  const cookies = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const posted = await fetch(`${issuer}/oauth/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
    body: new URLSearchParams({ tx: field('tx'), csrf: field('csrf'), username: 'ada', password }),
  });
  assert.equal(posted.status, 302, 'redirect back to the app');
  return new URL(posted.headers.get('location'));
}

test('discovery announces DPoP, PAR and private_key_jwt', async () => {
  const config = await client.discovery(new URL(issuer), 'spa', undefined, client.None(), insecure);
  const meta = config.serverMetadata();
  assert.ok(meta.dpop_signing_alg_values_supported.includes('ES256'));
  assert.equal(meta.pushed_authorization_request_endpoint, `${issuer}/oauth/par`);
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
});

test('PAR + authorization code + DPoP-bound tokens, userinfo, refresh', async () => {
  const config = await client.discovery(new URL(issuer), 'spa', undefined, client.None(), insecure);
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: redirectURI, scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  assert.match(url.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
  assert.equal(url.searchParams.get('scope'), null, 'only the reference travels through the browser');

  const callback = await signIn(url);
  const tokens = await client.authorizationCodeGrant(config, callback,
    { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }, undefined, { DPoP: dpop });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  assert.ok(tokens.refresh_token);

  const info = await client.fetchProtectedResource(config, tokens.access_token, new URL(`${issuer}/oauth/userinfo`), 'GET',
    undefined, undefined, { DPoP: dpop });
  assert.equal(info.status, 200);
  assert.ok((await info.json()).sub);

  // The same token as a plain Bearer token is refused.
  const bearer = await fetch(`${issuer}/api/hello`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(bearer.status, 401);
  assert.match(bearer.headers.get('www-authenticate'), /dpop_missing/);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop });
  assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
  const hello = await client.fetchProtectedResource(config, refreshed.access_token, new URL(`${issuer}/api/hello`), 'GET',
    undefined, undefined, { DPoP: dpop });
  assert.equal(hello.status, 200);

  // Another key cannot refresh the public client's bound refresh token.
  const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: thief }),
    (err) => err.error === 'invalid_dpop_proof');
});

test('private_key_jwt at the token and introspection endpoints, with DPoP', async () => {
  const { privateKey, publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'interop-1', alg: 'ES256', use: 'sig' };
  const file = join(work, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [jwk] }));
  flowd('clients', 'add', '--id', 'backend', '--scopes', 'read', '--auth-method', 'private_key_jwt', '--jwks-file', file);

  const config = await client.discovery(new URL(issuer), 'backend', undefined,
    client.PrivateKeyJwt({ key: privateKey, kid: 'interop-1' }), insecure);
  const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const tokens = await client.clientCredentialsGrant(config, { scope: 'read' }, { DPoP: dpop });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  const hello = await client.fetchProtectedResource(config, tokens.access_token, new URL(`${issuer}/api/hello`), 'GET',
    undefined, undefined, { DPoP: dpop });
  assert.equal(hello.status, 200);

  const introspection = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(introspection.active, true);
  assert.equal(introspection.token_type, 'DPoP');

  // A client that registered keys cannot fall back to a secret.
  const secretConfig = await client.discovery(new URL(issuer), 'backend', 'guessed-secret-0123456789', undefined, insecure);
  // (flowd answers 401 invalid_client with WWW-Authenticate: Basic, which
  // openid-client reports as a challenge.)
  await assert.rejects(client.clientCredentialsGrant(secretConfig, { scope: 'read' }),
    (err) => err.status === 401 && (err.error === 'invalid_client' || err.cause?.[0]?.scheme === 'basic'));
});
