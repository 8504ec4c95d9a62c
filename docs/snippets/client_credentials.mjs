// A token from Latch with Node's built-in fetch (Node 18 or later), then
// its introspection. Run `latch serve --dev` first; ISSUER, CLIENT_ID and
// CLIENT_SECRET default to its demo client.
const issuer = process.env.ISSUER ?? "http://127.0.0.1:8080";
const clientId = process.env.CLIENT_ID ?? "demo-client";
const clientSecret = process.env.CLIENT_SECRET ?? "demo-secret";

// client_secret_basic: both halves form-encoded, then base64 (RFC 6749 §2.3.1).
const basic = "Basic " + Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64");

async function post(url, form) {
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${url}: ${res.status} ${body.error}: ${body.error_description}`);
  return body;
}

const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const token = await post(meta.token_endpoint, { grant_type: "client_credentials", scope: "read" });
const info = await post(meta.introspection_endpoint, { token: token.access_token });
console.log("active:", info.active, "scope:", info.scope);
