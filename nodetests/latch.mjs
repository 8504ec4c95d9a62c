// What every script shares: the server and clients node_test.go started
// (NODETEST_* variables), discovery through oauth4webapi, the DPoP nonce
// retry, and a browser made of fetch and a cookie jar for the login and
// consent pages.
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'

function env(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set: run these scripts through node_test.go (go test ./nodetests)`)
  return v
}

export const issuer = new URL(env('NODETEST_ISSUER'))
export const redirectURI = env('NODETEST_REDIRECT_URI')
export const user = { username: env('NODETEST_USERNAME'), password: env('NODETEST_PASSWORD') }
// A client_secret_jwt client with a JWKS for its signed request objects,
// require_signed_request_object and dpop_bound_access_tokens.
export const web = {
  client: { client_id: env('NODETEST_WEB_CLIENT_ID') },
  secret: env('NODETEST_WEB_CLIENT_SECRET'),
}
// A private_key_jwt client for client_credentials.
export const service = { client: { client_id: env('NODETEST_SERVICE_CLIENT_ID') } }
// A private_key_jwt client with a token exchange policy (RFC 8693): it
// may delegate to https://billing.example.com, not impersonate.
export const gateway = { client: { client_id: env('NODETEST_GATEWAY_CLIENT_ID') } }

// Latch listens on http://127.0.0.1 here; oauth4webapi wants this flag
// for every request to a non-https URL.
export const insecure = { [oauth.allowInsecureRequests]: true }

// The private key the clients registered the public half of.
export async function privateKey() {
  const jwk = JSON.parse(env('NODETEST_PRIVATE_JWK'))
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  return { key, kid: jwk.kid }
}

let metadata
export async function discover() {
  if (!metadata) {
    const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure })
    metadata = await oauth.processDiscoveryResponse(issuer, response)
  }
  return metadata
}

// withNonce runs one request and its processing (attempt), and once more
// when the server asks for its DPoP nonce (RFC 9449 §8): the DPoP handle
// has kept the nonce of the refusal. It reports how many attempts it took.
export async function withNonce(attempt) {
  try {
    return { result: await attempt(), attempts: 1 }
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    return { result: await attempt(), attempts: 2 }
  }
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of an EC public key.
export async function thumbprint(publicKey) {
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', publicKey)
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify({ crv, kty, x, y })))
  return Buffer.from(digest).toString('base64url')
}

// A browser: cookies kept per name, redirects followed by hand, forms
// posted with their hidden fields and an Origin header, as Latch's CSRF
// protection expects of a browser.
export class Browser {
  #cookies = new Map()

  async #fetch(url, init = {}) {
    const headers = new Headers(init.headers)
    if (this.#cookies.size) headers.set('cookie', [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair.indexOf('=')
      this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
    }
    return response
  }

  // authorize follows url through the login and consent pages, signing in
  // and allowing, and returns the URL of the redirect to the client.
  async authorize(url, { username, password }) {
    let target = new URL(url)
    let init = {}
    for (let step = 0; step < 12; step++) {
      if (target.href.startsWith(redirectURI)) return target
      const response = await this.#fetch(target, init)
      const location = response.headers.get('location')
      if (response.status >= 300 && response.status < 400 && location) {
        target = new URL(location, target)
        init = {}
        continue
      }
      const body = await response.text()
      assert.equal(response.status, 200, `${target.pathname} answered ${response.status}: ${body.slice(0, 300)}`)
      const form = pickForm(body)
      if (form.fields.has('password')) {
        form.fields.set('username', username)
        form.fields.set('password', password)
      } else if (form.decision) {
        form.fields.set('decision', 'allow')
      } else {
        throw new Error(`${target.pathname}: neither the login nor the consent page`)
      }
      target = new URL(form.action || target.href, target)
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: issuer.origin },
        body: form.fields,
      }
    }
    throw new Error('too many pages before the redirect to the client')
  }
}

// pickForm finds the login form (it has a password input) or the consent
// form (a submit button named decision) of a page.
function pickForm(html) {
  for (const [, attrs, inner] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const fields = new URLSearchParams()
    for (const [tag] of inner.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(tag, 'name')
      if (!name || ['submit', 'checkbox', 'button'].includes(attr(tag, 'type'))) continue
      fields.set(name, attr(tag, 'value') ?? '')
    }
    const decision = /<button\b[^>]*name="decision"/i.test(inner)
    if (fields.has('password') || decision) return { action: attr(attrs, 'action'), fields, decision }
  }
  throw new Error(`no login or consent form in the page: ${html.slice(0, 300)}`)
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\b${name}="([^"]*)"`, 'i'))
  return m ? decodeEntities(m[1]) : undefined
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()]
    if (named) return named
    return String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10))
  })
}
