'use strict';
// The work of bench/baseline (the hand-written Go server) in Node.js with
// panva's jose: one JWK Set served from memory with an ETag, bearer access
// token validation with the same checks and reason codes, and the
// client_credentials token endpoint (argon2id secrets with flowd's
// parameters, a success remembered 5 minutes, RFC 9068 at+jwt tokens
// signed with an RSA-3072 or a P-256 key). bench/node/server.cjs serves it
// with node:http; bench/nodered/ calls it from Node-RED function nodes.
// Not part of flowd: it only exists to be measured against it.

const crypto = require('node:crypto');
const jose = require('jose');
const argon2 = require('argon2');

const MAX_TOKEN = 8 << 10;
const LEEWAY = 30; // seconds
const JWKS_MAX_AGE = 900;
const TOKEN_TTL = 3600;
const SECRET_TTL = 5 * 60 * 1000;
const MAX_SCOPES = 50;
const ALGS = ['RS256', 'ES256'];
// flowd's passhash parameters: m=19 MiB, t=2, p=1.
const ARGON = { type: argon2.argon2id, memoryCost: 19 * 1024, timeCost: 2, parallelism: 1, hashLength: 32 };

class Reason extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

// create builds the work from the JWK Set's bytes (as flowd serves them),
// the issuer and audience tokens must carry, and the clients
// ('id|secret|scopes|audiences' strings, as bench/handwritten's --client).
async function create({ jwksBody, issuer, audience, clients }) {
  const set = JSON.parse(jwksBody.toString('utf8'));
  const keys = new Map();
  for (const k of set.keys || []) {
    if (!k.kid || (k.use && k.use !== 'sig')) continue;
    let fits;
    if (k.kty === 'RSA') fits = (alg) => alg === 'RS256' && Buffer.from(k.n, 'base64url').length * 8 >= 2048;
    else if (k.kty === 'EC' && k.crv === 'P-256') fits = (alg) => alg === 'ES256';
    else continue;
    const alg = k.alg || (k.kty === 'RSA' ? 'RS256' : 'ES256');
    keys.set(k.kid, { alg: k.alg, fits, key: await jose.importJWK(k, alg) });
  }
  if (keys.size === 0) throw new Error('JWKS has no signing keys with a kid');
  const etag = '"' + crypto.createHash('sha256').update(jwksBody).digest('base64url') + '"';

  const getKey = (header) => {
    const k = keys.get(header.kid);
    if (!k) throw new Reason('unknown_kid');
    if ((k.alg && k.alg !== header.alg) || !k.fits(header.alg)) throw new Reason('alg_not_allowed');
    return k.key;
  };

  // validate checks an Authorization header value: the claims, or throws
  // a Reason with flowd's error_description code.
  async function validate(authz) {
    const sp = (authz || '').indexOf(' ');
    if (sp < 0 || authz.slice(0, sp).toLowerCase() !== 'bearer') throw new Reason('token_missing');
    const token = authz.slice(sp + 1).trim();
    if (!token) throw new Reason('token_missing');
    if (token.length > MAX_TOKEN) throw new Reason('token_too_large');
    let res;
    try {
      res = await jose.jwtVerify(token, getKey, {
        algorithms: ALGS, issuer, audience, typ: 'at+jwt', clockTolerance: LEEWAY, requiredClaims: ['exp'],
      });
    } catch (e) {
      throw e instanceof Reason ? e : new Reason(reasonOf(e));
    }
    return res.payload;
  }

  const signers = {
    RS256: { kid: 'bench-rs256', key: crypto.generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey },
    ES256: { kid: 'bench-es256', key: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey },
  };
  const hmacKey = crypto.randomBytes(32);
  const recent = new Map(); // HMAC(stored hash, secret) -> expiry (ms)
  const byID = new Map();
  for (const spec of clients) {
    const [id, secret, scopes = '', auds = ''] = spec.split('|');
    const hash = await argon2.hash(secret, ARGON);
    byID.set(id, { id, hash, scopes: scopes.split(' ').filter(Boolean), audiences: auds.split(' ').filter(Boolean) });
  }

  async function authenticate(form, authz) {
    const bad = oauthError(401, 'invalid_client', 'client authentication failed');
    let id, secret;
    const postID = form.get('client_id') || '', postSecret = form.get('client_secret') || '';
    if (authz) {
      if (postSecret) throw oauthError(401, 'invalid_client', 'use one client authentication method, not both');
      if (authz.length < 6 || authz.slice(0, 6).toLowerCase() !== 'basic ') {
        throw oauthError(401, 'invalid_client', 'unsupported authorization scheme');
      }
      const raw = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8');
      const c = raw.indexOf(':');
      if (c < 0) throw oauthError(401, 'invalid_client', 'malformed Basic credentials');
      try {
        id = decodeURIComponent(raw.slice(0, c).replace(/\+/g, ' '));
        secret = decodeURIComponent(raw.slice(c + 1).replace(/\+/g, ' '));
      } catch {
        throw oauthError(401, 'invalid_client', 'malformed Basic credentials');
      }
      if (!id) throw oauthError(401, 'invalid_client', 'malformed Basic credentials');
      if (postID && postID !== id) throw oauthError(401, 'invalid_client', 'client_id does not match the authenticated client');
    } else {
      if (!postID || !postSecret) throw oauthError(401, 'invalid_client', 'client authentication required');
      id = postID;
      secret = postSecret;
    }
    const cl = byID.get(id);
    if (!cl) throw bad;
    const k = crypto.createHmac('sha256', hmacKey).update(cl.hash).update('\0').update(secret).digest('base64');
    const now = Date.now();
    const exp = recent.get(k);
    if (exp !== undefined && now < exp) return cl;
    if (!(await argon2.verify(cl.hash, secret))) throw bad;
    if (recent.size >= 10000) recent.clear();
    recent.set(k, now + SECRET_TTL);
    return cl;
  }

  // issue answers a client_credentials request: the JSON body, or throws
  // an oauthError.
  async function issue(alg, form, authz) {
    const cl = await authenticate(form, authz);
    const grant = form.get('grant_type') || '';
    if (grant === '') {
      throw oauthError(400, 'invalid_request', 'grant_type is required: authorization_code, refresh_token or client_credentials');
    }
    if (grant !== 'client_credentials') {
      throw oauthError(400, 'unsupported_grant_type', 'grant_type must be authorization_code, refresh_token or client_credentials');
    }
    let requested = (form.get('scope') || '').split(/\s+/).filter(Boolean);
    if (requested.length > MAX_SCOPES) throw oauthError(400, 'invalid_scope', 'too many scopes requested');
    if (requested.length === 0) requested = cl.scopes;
    for (const s of requested) {
      if (!cl.scopes.includes(s)) throw oauthError(400, 'invalid_scope', `scope "${s}" is not allowed for this client`);
    }
    let aud = audience;
    const res = form.getAll('resource');
    if (res.length > 1) throw oauthError(400, 'invalid_target', 'request one resource per token');
    if (res.length === 1) {
      let u;
      try {
        u = new URL(res[0]);
      } catch {
        u = null;
      }
      if (!u || u.hash) throw oauthError(400, 'invalid_target', 'resource must be an absolute URI without a fragment');
      if (!cl.audiences.includes(res[0])) throw oauthError(400, 'invalid_target', 'this client may not request tokens for that resource');
      aud = res[0];
    }
    const scope = [...new Set(requested)].join(' ');
    const now = Math.floor(Date.now() / 1000);
    const s = signers[alg];
    const token = await new jose.SignJWT({ client_id: cl.id, scope })
      .setProtectedHeader({ alg, typ: 'at+jwt', kid: s.kid })
      .setIssuer(issuer).setSubject(cl.id).setAudience(aud)
      .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + TOKEN_TTL)
      .setJti(crypto.randomBytes(16).toString('base64url'))
      .sign(s.key);
    return { access_token: token, token_type: 'Bearer', expires_in: TOKEN_TTL, scope };
  }

  return {
    jwks: { body: jwksBody, etag, cacheControl: 'public, max-age=' + JWKS_MAX_AGE, length: String(jwksBody.length) },
    validate,
    issue,
  };
}

// reasonOf maps a jose error to flowd's error_description code.
function reasonOf(e) {
  switch (e && e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'token_expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.reason === 'missing') return 'missing_claim';
      switch (e.claim) {
        case 'aud': return 'wrong_audience';
        case 'iss': return 'wrong_issuer';
        case 'nbf': return 'not_yet_valid';
        case 'iat': return 'issued_in_future';
        case 'typ': return 'wrong_type';
      }
      return 'malformed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'alg_not_allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown_kid';
  }
  return 'malformed';
}

function oauthError(status, code, description) {
  const e = new Error(code + ': ' + description);
  e.status = status;
  e.body = { error: code, error_description: description };
  return e;
}

// challenge is the WWW-Authenticate of a refused bearer token.
function challenge(reason) {
  let c = 'Bearer realm="flowd"';
  if (reason !== 'token_missing') c += `, error="invalid_token", error_description="${reason}"`;
  else c += ', DPoP realm="flowd", algs="ES256 ES384 ES512 EdDSA RS256 RS384 RS512 PS256 PS384 PS512"';
  return c;
}

// etagMatch applies If-None-Match (RFC 9110 §13.1.2), weak comparison.
function etagMatch(header, etag) {
  if (header.trim() === '*') return true;
  const want = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === want);
}

// formOf turns a form Node-RED's http in parsed into an object (a
// repeated name gives an array) into URLSearchParams, as issue wants it.
function formOf(obj) {
  const form = new URLSearchParams();
  if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj)) {
      for (const x of [].concat(v)) form.append(k, String(x));
    }
  }
  return form;
}

module.exports = { create, challenge, etagMatch, formOf, Reason };
