// Discovery as oauth4webapi reads it (OIDC Discovery 1.0, RFC 8414): the
// issuer matches, and every feature the other scripts use is listed.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { discover, issuer } from './latch.mjs'

test('discovery lists what the flows use', async () => {
  const as = await discover()
  assert.equal(as.issuer, issuer.href.replace(/\/$/, ''))
  assert.ok(as.pushed_authorization_request_endpoint, 'PAR (RFC 9126)')
  assert.equal(as.request_parameter_supported, true, 'JAR (RFC 9101)')
  assert.ok(as.request_object_signing_alg_values_supported.includes('ES256'))
  assert.equal(as.authorization_response_iss_parameter_supported, true, 'iss in authorization responses (RFC 9207)')
  assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'), 'DPoP (RFC 9449)')
  assert.ok(as.code_challenge_methods_supported.includes('S256'))
  for (const endpoint of ['token', 'introspection', 'revocation']) {
    assert.ok(as[`${endpoint}_endpoint_auth_methods_supported`].includes('client_secret_jwt'), endpoint)
    assert.ok(as[`${endpoint}_endpoint_auth_methods_supported`].includes('private_key_jwt'), endpoint)
    assert.ok(as[`${endpoint}_endpoint_auth_signing_alg_values_supported`].includes('HS256'), endpoint)
  }
})
