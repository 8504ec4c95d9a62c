// Token exchange (RFC 8693) as oauth4webapi sends any extension grant
// (genericTokenEndpointRequest): delegation with an actor token, the act claim at
// introspection, and the errors of §2.2.2.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as oauth from 'oauth4webapi'

import { discover, gateway, insecure, privateKey, web } from './latch.mjs'

const grantType = 'urn:ietf:params:oauth:grant-type:token-exchange'
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token'
const billing = 'https://billing.example.com'

async function clientCredentials(as, auth) {
  const response = await oauth.clientCredentialsGrantRequest(as, gateway.client, auth, new URLSearchParams({ scope: 'read' }), insecure)
  return (await oauth.processClientCredentialsResponse(as, gateway.client, response)).access_token
}

test('delegation: the issued token is the subject\'s, for the audience, with act', async () => {
  const as = await discover()
  const auth = oauth.PrivateKeyJwt(await privateKey())
  const subject = await clientCredentials(as, auth)
  const actor = await clientCredentials(as, auth)

  const response = await oauth.genericTokenEndpointRequest(as, gateway.client, auth, grantType, new URLSearchParams({
    subject_token: subject, subject_token_type: accessTokenType,
    actor_token: actor, actor_token_type: accessTokenType,
    audience: billing, scope: 'read',
  }), insecure)
  const tokens = await oauth.processGenericTokenEndpointResponse(as, gateway.client, response)
  assert.equal(tokens.token_type, 'bearer')
  assert.equal(tokens.issued_token_type, accessTokenType)
  assert.equal(tokens.scope, 'read')
  assert.ok(tokens.expires_in > 0)

  const introspection = await oauth.introspectionRequest(as, web.client, oauth.ClientSecretJwt(web.secret), tokens.access_token, insecure)
  const claims = await oauth.processIntrospectionResponse(as, web.client, introspection)
  assert.equal(claims.active, true)
  assert.equal(claims.sub, gateway.client.client_id)
  assert.deepEqual(claims.aud, [billing])
  assert.deepEqual(claims.act, { sub: gateway.client.client_id })
})

test('errors: invalid_target, and invalid_request for impersonation without the policy', async () => {
  const as = await discover()
  const auth = oauth.PrivateKeyJwt(await privateKey())
  const subject = await clientCredentials(as, auth)
  const cases = [
    [{ subject_token: subject, subject_token_type: accessTokenType, actor_token: subject, actor_token_type: accessTokenType, audience: 'https://elsewhere.example.com' }, 'invalid_target'],
    [{ subject_token: subject, subject_token_type: accessTokenType }, 'invalid_request'],
    [{ subject_token: 'not-a-token', subject_token_type: accessTokenType, actor_token: subject, actor_token_type: accessTokenType }, 'invalid_request'],
  ]
  for (const [params, code] of cases) {
    const response = await oauth.genericTokenEndpointRequest(as, gateway.client, auth, grantType, new URLSearchParams(params), insecure)
    await assert.rejects(oauth.processGenericTokenEndpointResponse(as, gateway.client, response), (err) => {
      assert.ok(err instanceof oauth.ResponseBodyError, String(err))
      assert.equal(err.error, code)
      assert.equal(err.status, 400)
      return true
    })
  }
})
