// Client authentication by assertion, as oauth4webapi makes it:
// client_secret_jwt (HS256 with the secret) and private_key_jwt, both with
// the issuer as aud (RFC 7523 §2.2, OIDC Core §9).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as oauth from 'oauth4webapi'

import { discover, insecure, privateKey, service, web, withNonce } from './latch.mjs'

test('private_key_jwt: client_credentials, then introspection by a client_secret_jwt client', async () => {
  const as = await discover()
  const auth = oauth.PrivateKeyJwt(await privateKey())
  const response = await oauth.clientCredentialsGrantRequest(as, service.client, auth, new URLSearchParams({ scope: 'read' }), insecure)
  const tokens = await oauth.processClientCredentialsResponse(as, service.client, response)
  assert.equal(tokens.token_type, 'bearer')
  assert.equal(tokens.scope, 'read')

  const introspection = await oauth.introspectionRequest(as, web.client, oauth.ClientSecretJwt(web.secret), tokens.access_token, insecure)
  const claims = await oauth.processIntrospectionResponse(as, web.client, introspection)
  assert.equal(claims.active, true)
  assert.equal(claims.client_id, service.client.client_id)
})

test('client_secret_jwt with a wrong secret is 401 invalid_client', async () => {
  const as = await discover()
  const wrong = oauth.ClientSecretJwt('not-the-secret-but-long-enough-to-be-an-hs256-key')
  const response = await oauth.introspectionRequest(as, web.client, wrong, 'any-token', insecure)
  // A 401 carries WWW-Authenticate, which oauth4webapi reports as a
  // challenge; the body is the RFC 6749 §5.2 error.
  const err = await oauth.processIntrospectionResponse(as, web.client, response).then(() => assert.fail('accepted'), (e) => e)
  assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, String(err))
  assert.equal(err.status, 401)
  assert.equal((await err.response.json()).error, 'invalid_client')
})

test('a dpop_bound_access_tokens client: refused without DPoP, DPoP-bound with it', async () => {
  const as = await discover()
  const auth = oauth.ClientSecretJwt(web.secret)
  const params = new URLSearchParams({ scope: 'read' })
  const refused = await oauth.clientCredentialsGrantRequest(as, web.client, auth, params, insecure)
  await assert.rejects(oauth.processClientCredentialsResponse(as, web.client, refused), (err) => {
    assert.equal(err.error, 'invalid_dpop_proof')
    return true
  })

  const DPoP = oauth.DPoP(web.client, await oauth.generateKeyPair('ES256'))
  const { result: tokens, attempts } = await withNonce(async () => {
    const response = await oauth.clientCredentialsGrantRequest(as, web.client, auth, params, { DPoP, ...insecure })
    return oauth.processClientCredentialsResponse(as, web.client, response)
  })
  assert.equal(attempts, 2, 'the first proof had no nonce: use_dpop_nonce, then the retry')
  assert.equal(tokens.token_type, 'dpop')
})
