// A small OpenID Connect provider for the single sign-on flow, on node:http and node:crypto alone
// (the Node counterpart of the one in admin-api/tests/suite/sso.rs): discovery, an authorization
// endpoint with a real (minimal) login page, a token endpoint that checks the client's secret
// (HTTP Basic, both parts form-urlencoded) and the PKCE verifier against the challenge (S256),
// and a JWKS with one ES256 key. It knows a fixed set of users and asks for a username only (no
// password: whoever is at the keyboard is trusted); "Cancel" sends the browser back with
// `error=access_denied`. A request it refuses is answered with the reason and written to `log`.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';

/** The people the provider signs in, by the username typed on its page. */
export const OIDC_USERS = {
  sam: { sub: 'e2e-00u-sam', name: 'Sam Rivera', email: 'sam@idp.example', groups: ['gw-ops', 'gateway-leads'] },
};

const MAX_BODY_BYTES = 64 * 1024;
/** How long an authorization code (and a login page) is good for. */
const GRANT_TTL_MS = 5 * 60_000;
const ID_TOKEN_TTL_SECS = 300;

const b64url = (data) => Buffer.from(data).toString('base64url');
const random = () => randomBytes(24).toString('base64url');
const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]);
/** One part of `client_secret_basic` (RFC 6749 §2.3.1: form-urlencoded before base64). */
const formDecode = (text) => decodeURIComponent(text.replace(/\+/g, ' '));

/** The client id and secret of an `Authorization: Basic …` header, or `[]`. */
function basicCredentials(header = '') {
  const match = /^Basic ([A-Za-z0-9+/]+=*)$/.exec(header);
  if (!match) return [];
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return [];
  try {
    return [decoded.slice(0, colon), decoded.slice(colon + 1)].map(formDecode);
  } catch {
    return []; // not form-urlencoded
  }
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function loginPage({ clientId, requestId, username = '', error }) {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>E2E identity provider</title>
    <link rel="icon" href="data:," />
  </head>
  <body style="font-family: sans-serif; max-width: 360px; margin: 80px auto">
    <h1>E2E identity provider</h1>
    <p>Sign in to continue to <strong>${escapeHtml(clientId)}</strong>.</p>
    ${error ? `<p role="alert" style="color: #b00020">${escapeHtml(error)}</p>` : ''}
    <form method="post" action="/authorize">
      <input type="hidden" name="request" value="${escapeHtml(requestId)}" />
      <p>
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required autofocus value="${escapeHtml(username)}" />
      </p>
      <button type="submit" name="action" value="sign-in">Sign in</button>
      <button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
    </form>
  </body>
</html>
`;
}

/**
 * Starts the provider on a free loopback port. `redirectUri` is the client's one registered
 * callback; the provider redirects nowhere else.
 * @returns {Promise<{ issuer: string, stop: () => Promise<void> }>}
 */
export async function startOidcProvider({ clientId, clientSecret, redirectUri, users = OIDC_USERS, log = () => undefined }) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `e2e-${random().slice(0, 8)}`;
  const { x, y } = publicKey.export({ format: 'jwk' });
  const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x, y, kid, alg: 'ES256', use: 'sig' }] };
  /** Login pages shown, by their request id: the authorization request they answer. */
  const pending = new Map();
  /** Authorization codes issued and not yet exchanged. */
  const grants = new Map();
  let issuer;

  const idToken = (grant) => {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'ES256', typ: 'JWT', kid };
    const claims = {
      iss: issuer,
      sub: grant.user.sub,
      aud: clientId,
      iat: now,
      exp: now + ID_TOKEN_TTL_SECS,
      nonce: grant.nonce,
      preferred_username: grant.username,
      name: grant.user.name,
      email: grant.user.email,
      groups: grant.user.groups,
    };
    const message = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(message), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${message}.${b64url(signature)}`;
  };

  const expire = () => {
    const now = Date.now();
    for (const map of [pending, grants]) for (const [key, value] of map) if (value.expires < now) map.delete(key);
  };

  const handle = async (request, response) => {
    const url = new URL(request.url, issuer);
    const send = (status, body, type = 'application/json', headers = {}) => {
      const text = type === 'application/json' ? JSON.stringify(body) : body;
      response.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', ...headers });
      response.end(text);
      return status;
    };
    const redirect = (params) => {
      const location = new URL(redirectUri);
      for (const [name, value] of Object.entries(params)) location.searchParams.set(name, value);
      response.writeHead(302, { location: location.toString(), 'cache-control': 'no-store' });
      response.end();
      return 302;
    };
    expire();
    const route = `${request.method} ${url.pathname}`;

    if (route === 'GET /.well-known/openid-configuration') {
      return send(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
      });
    }
    if (route === 'GET /jwks') return send(200, jwks);

    if (route === 'GET /authorize') {
      const param = (name) => url.searchParams.get(name) ?? '';
      const problems = [
        param('response_type') !== 'code' && 'response_type is not code',
        param('client_id') !== clientId && 'unknown client_id',
        param('redirect_uri') !== redirectUri && 'redirect_uri is not the registered one',
        param('code_challenge_method') !== 'S256' && 'code_challenge_method is not S256',
        !/^[A-Za-z0-9_-]{43}$/.test(param('code_challenge')) && 'code_challenge is not a SHA-256',
        !param('scope').split(' ').includes('openid') && 'scope lacks openid',
        !param('state') && 'no state',
        !param('nonce') && 'no nonce',
      ].filter(Boolean);
      // Never a redirect for a request that is not the client's: the page says what is wrong.
      if (problems.length) {
        log(`authorization request refused: ${problems.join('; ')}`);
        return send(400, `bad authorization request: ${escapeHtml(problems.join('; '))}`, 'text/html');
      }
      const requestId = random();
      pending.set(requestId, {
        state: param('state'),
        nonce: param('nonce'),
        challenge: param('code_challenge'),
        expires: Date.now() + GRANT_TTL_MS,
      });
      return send(200, loginPage({ clientId, requestId }), 'text/html');
    }

    if (route === 'POST /authorize') {
      const form = new URLSearchParams(await readBody(request));
      const requestId = form.get('request') ?? '';
      const authorization = pending.get(requestId);
      if (!authorization) return send(400, 'this sign-in is unknown or expired; start again from the application', 'text/html');
      if (form.get('action') === 'cancel') {
        pending.delete(requestId);
        log('the user cancelled the sign-in');
        return redirect({ error: 'access_denied', error_description: 'The user cancelled the sign-in', state: authorization.state });
      }
      const username = (form.get('username') ?? '').trim();
      const user = Object.hasOwn(users, username) ? users[username] : undefined;
      if (!user) {
        log(`unknown username ${JSON.stringify(username)}`);
        return send(401, loginPage({ clientId, requestId, username, error: 'Unknown username.' }), 'text/html');
      }
      pending.delete(requestId);
      const code = random();
      grants.set(code, { ...authorization, username, user, expires: Date.now() + GRANT_TTL_MS });
      log(`signed in ${username}`);
      return redirect({ code, state: authorization.state });
    }

    if (route === 'POST /token') {
      const refuse = (status, error, why) => {
        log(`token endpoint refused: ${why}`);
        return send(status, { error, error_description: why });
      };
      const [id, secret] = basicCredentials(request.headers.authorization);
      if (id !== clientId || secret !== clientSecret) return refuse(401, 'invalid_client', 'client authentication failed');
      const form = new URLSearchParams(await readBody(request));
      if (form.get('grant_type') !== 'authorization_code') return refuse(400, 'unsupported_grant_type', 'grant_type');
      // A code is exchanged once.
      const code = form.get('code') ?? '';
      const grant = grants.get(code);
      grants.delete(code);
      if (!grant) return refuse(400, 'invalid_grant', 'unknown, expired or used code');
      if (form.get('redirect_uri') !== redirectUri) return refuse(400, 'invalid_grant', 'redirect_uri differs');
      const verifier = form.get('code_verifier') ?? '';
      if (b64url(createHash('sha256').update(verifier).digest()) !== grant.challenge) {
        return refuse(400, 'invalid_grant', 'PKCE verifier does not match the challenge');
      }
      log(`issued an ID token for ${grant.username}`);
      return send(200, { access_token: random(), token_type: 'Bearer', expires_in: ID_TOKEN_TTL_SECS, id_token: idToken(grant) });
    }

    return send(404, { error: 'not_found' });
  };

  const server = createServer((request, response) => {
    handle(request, response)
      .then((status) => log(`${request.method} ${request.url.split('?')[0]} ${status}`))
      .catch((error) => {
        log(`${request.method} ${request.url.split('?')[0]} failed: ${error.message}`);
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end();
      });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  issuer = `http://127.0.0.1:${server.address().port}`;
  log(`listening, issuer ${issuer}`);
  const stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { issuer, stop };
}
