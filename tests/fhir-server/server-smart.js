'use strict';
// SMART Backend Services for the FHIR test server (server.js): a token endpoint that checks client
// assertions the way an EHR's does (signature against the client's registered public key, iss =
// sub = client id, aud = this endpoint, exp at most five minutes ahead and not past, jti never seen
// before), and bearer tokens required on FHIR requests once a client is registered with
// `required`. `policy` (the profile's): token `lifetime` in seconds, and `minInterval`, the seconds
// a client must wait after a token before the next (429 slow_down sooner, and `onThrottle` is
// called). POST /admin/smart registers clients and switches it.

const crypto = require('node:crypto');
const { BASE_PATH, send } = require('./server-http.js');

const smart = { clients: new Map(), required: false, tokens: new Map(), seenJti: new Set(), issued: 0, revokeEvery: 0, requests: 0,
  lastIssued: new Map() };

function smartTokenResponse(res, form, tokenUrl, policy) {
  const refuse = (error, description) => {
    res.writeHead(error === 'invalid_client' ? 401 : 400, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error, error_description: description }));
  };
  if (form.get('grant_type') !== 'client_credentials') return refuse('unsupported_grant_type', 'client_credentials only');
  if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    return refuse('invalid_request', 'client_assertion_type must be jwt-bearer');
  }
  const parts = (form.get('client_assertion') ?? '').split('.');
  if (parts.length !== 3) return refuse('invalid_request', 'client_assertion is not a JWT');
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return refuse('invalid_request', 'client_assertion is not a JWT');
  }
  const client = smart.clients.get(claims.iss);
  if (!client) return refuse('invalid_client', 'unknown client');
  if (header.alg !== 'RS384' && header.alg !== 'ES384') return refuse('invalid_client', 'alg must be RS384 or ES384');
  const key = header.alg === 'ES384' ? { key: client.publicKeyPem, dsaEncoding: 'ieee-p1363' } : client.publicKeyPem;
  let valid = false;
  try {
    valid = crypto.verify('sha384', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
  } catch {
    valid = false;
  }
  if (!valid) return refuse('invalid_client', 'signature does not verify');
  const now = Date.now() / 1000;
  if (claims.sub !== claims.iss) return refuse('invalid_client', 'sub must equal iss');
  if (claims.aud !== tokenUrl) return refuse('invalid_client', `aud must be ${tokenUrl}`);
  if (typeof claims.exp !== 'number' || claims.exp <= now || claims.exp > now + 300 + 5) {
    return refuse('invalid_client', 'exp must be in the next five minutes');
  }
  if (typeof claims.jti !== 'string' || smart.seenJti.has(claims.jti)) return refuse('invalid_client', 'jti reused');
  const since = (Date.now() - (smart.lastIssued.get(claims.iss) ?? -Infinity)) / 1000;
  if (since < policy.minInterval) {
    policy.onThrottle();
    res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': String(Math.ceil(policy.minInterval - since)) });
    res.end(JSON.stringify({ error: 'slow_down', error_description: `at most one token every ${policy.minInterval} s` }));
    return;
  }
  smart.seenJti.add(claims.jti);
  smart.lastIssued.set(claims.iss, Date.now());
  const token = crypto.randomBytes(24).toString('base64url');
  smart.tokens.set(token, Date.now() + policy.lifetime * 1000);
  smart.issued += 1;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify({ access_token: token, token_type: 'bearer', expires_in: policy.lifetime, scope: form.get('scope') ?? '' }));
}

function smartAuthorized(req) {
  if (smart.basic) {
    const expected = 'Basic ' + Buffer.from(`${smart.basic.user}:${smart.basic.password}`).toString('base64');
    return req.headers.authorization === expected;
  }
  if (!smart.required) return true;
  // Tokens revoked every N requests: clients must renew on 401 in the middle of a run.
  if (smart.revokeEvery > 0 && ++smart.requests % smart.revokeEvery === 0) smart.tokens.clear();
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  const expires = m ? smart.tokens.get(m[1]) : undefined;
  return expires !== undefined && expires > Date.now();
}

// POST /admin/smart and POST /auth/token (false for any other request).
function handleSmart(ctx, req, res, url, rawBody) {
  const { profile, stats, baseUrl } = ctx;
  if (url.pathname === '/admin/smart' && req.method === 'POST') {
    // {"clientId", "publicKeyPem", "required"} registers a client; {"revoke": true} revokes
    // every token issued (clients must then ask for a new one); {"required": false} turns off.
    const body = JSON.parse(rawBody.toString('utf8') || '{}');
    if (body.clientId && body.publicKeyPem) smart.clients.set(body.clientId, { publicKeyPem: body.publicKeyPem });
    if (body.revoke) smart.tokens.clear();
    if (typeof body.required === 'boolean') smart.required = body.required;
    if (typeof body.revokeEvery === 'number') smart.revokeEvery = body.revokeEvery;
    if (body.basic !== undefined) smart.basic = body.basic; // {user, password} or null
    if (typeof body.mint === 'string') smart.tokens.set(body.mint, Date.now() + profile.token.lifetime * 1000); // a static token
    send(res, 200, { clients: smart.clients.size, required: smart.required, tokens: smart.tokens.size, issued: smart.issued });
    return true;
  }
  if (url.pathname === '/auth/token' && req.method === 'POST') {
    const policy = { ...profile.token, onThrottle: () => (stats.throttled += 1) };
    smartTokenResponse(res, new URLSearchParams(rawBody.toString('utf8')), baseUrl.slice(0, -BASE_PATH.length) + '/auth/token', policy);
    return true;
  }
  return false;
}

module.exports = { smartAuthorized, handleSmart };
