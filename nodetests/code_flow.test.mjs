// The authorization code flow as a modern client runs it with
// oauth4webapi: a signed request object (RFC 9101) pushed (RFC 9126) with
// a DPoP proof, PKCE, the login and consent pages, the authorization
// response's iss checked (RFC 9207), DPoP-bound tokens with the nonce
// retry (RFC 9449), userinfo and refresh with DPoP, introspection and
// revocation; the client authenticates with client_secret_jwt throughout.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as oauth from 'oauth4webapi'

import { Browser, discover, insecure, privateKey, redirectURI, thumbprint, user, web, withNonce } from './latch.mjs'

test('PAR + JAR + PKCE + DPoP, refresh, userinfo, introspection, revocation', async (t) => {
  const as = await discover()
  const client = web.client
  const auth = oauth.ClientSecretJwt(web.secret)
  const keyPair = await oauth.generateKeyPair('ES256')
  const jkt = await thumbprint(keyPair.publicKey)
  const DPoP = oauth.DPoP(client, keyPair)
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()

  let requestURI
  await t.test('PAR with a signed request object and a DPoP proof', async () => {
    const request = await oauth.issueRequestObject(as, client, new URLSearchParams({
      response_type: 'code',
      redirect_uri: redirectURI,
      scope: 'openid profile offline_access',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }), await privateKey())
    const { result, attempts } = await withNonce(async () => {
      const response = await oauth.pushedAuthorizationRequest(as, client, auth, new URLSearchParams({ request }), { DPoP, ...insecure })
      return oauth.processPushedAuthorizationResponse(as, client, response)
    })
    assert.equal(attempts, 2, 'the first proof had no nonce: PAR answered use_dpop_nonce')
    assert.match(result.request_uri, /^urn:ietf:params:oauth:request_uri:/)
    requestURI = result.request_uri
  })

  let params
  await t.test('the browser signs in and consents; the response carries iss', async () => {
    const url = new URL(as.authorization_endpoint)
    url.searchParams.set('client_id', client.client_id)
    url.searchParams.set('request_uri', requestURI)
    const callback = await new Browser().authorize(url, user)
    assert.equal(callback.searchParams.get('iss'), as.issuer)

    // A response naming another issuer is a mix-up: oauth4webapi refuses it.
    const mixedUp = new URL(callback)
    mixedUp.searchParams.set('iss', 'https://attacker.example')
    assert.throws(() => oauth.validateAuthResponse(as, client, mixedUp, state), /iss/)
    const withoutIss = new URL(callback)
    withoutIss.searchParams.delete('iss')
    assert.throws(() => oauth.validateAuthResponse(as, client, withoutIss, state), /iss/)

    params = oauth.validateAuthResponse(as, client, callback, state)
  })

  let tokens
  await t.test('the code exchange is DPoP-bound (PAR bound the code to the key)', async () => {
    // Another key cannot redeem the code: the proof at PAR bound it.
    const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
    await assert.rejects(withNonce(async () => {
      const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectURI, verifier, { DPoP: thief, ...insecure })
      return oauth.processAuthorizationCodeResponse(as, client, response)
    }), (err) => err.error === 'invalid_dpop_proof')

    const { result } = await withNonce(async () => {
      const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectURI, verifier, { DPoP, ...insecure })
      return oauth.processAuthorizationCodeResponse(as, client, response)
    })
    tokens = result
    assert.equal(tokens.token_type, 'dpop')
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token')
    assert.equal(oauth.getValidatedIdTokenClaims(tokens).sub, user.username)
  })

  await t.test('userinfo with DPoP (the nonce retry at a resource endpoint)', async () => {
    const { result: info } = await withNonce(async () => {
      const response = await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure })
      return oauth.processUserInfoResponse(as, client, user.username, response)
    })
    assert.equal(info.sub, user.username)
    assert.ok(info.name)
  })

  let refreshed
  await t.test('refresh with DPoP', async () => {
    const { result } = await withNonce(async () => {
      const response = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, { DPoP, ...insecure })
      return oauth.processRefreshTokenResponse(as, client, response)
    })
    refreshed = result
    assert.equal(refreshed.token_type, 'dpop')
    assert.notEqual(refreshed.access_token, tokens.access_token)
  })

  await t.test('introspection shows the DPoP binding', async () => {
    const response = await oauth.introspectionRequest(as, client, auth, refreshed.access_token, insecure)
    const claims = await oauth.processIntrospectionResponse(as, client, response)
    assert.equal(claims.active, true)
    assert.equal(claims.token_type, 'DPoP')
    assert.equal(claims.cnf?.jkt, jkt)
    assert.equal(claims.sub, user.username)
  })

  await t.test('revocation ends the grant', async () => {
    const response = await oauth.revocationRequest(as, client, auth, refreshed.refresh_token, insecure)
    await oauth.processRevocationResponse(response)
    for (const token of [refreshed.refresh_token, refreshed.access_token]) {
      const r = await oauth.introspectionRequest(as, client, auth, token, insecure)
      assert.equal((await oauth.processIntrospectionResponse(as, client, r)).active, false)
    }
  })
})
