// Passkeys for Latch's login and account pages: the one script the pages
// load (CSP script-src 'self'). Everything else on the pages works
// without it. It asks the server for WebAuthn options, lets the browser
// talk to the authenticator, and posts the answer as an ordinary form, so
// the server answers with the same pages and redirects as for a password.
"use strict";
(function () {
  function b64u(buf) {
    var s = "", bytes = new Uint8Array(buf);
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unb64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = unb64u(c.id); });
  }
  function csrf(form) {
    return form.querySelector("input[name=csrf_token]").value;
  }
  function begin(url, form) {
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf(form) } })
      .then(function (r) {
        if (!r.ok) throw new Error("The server refused to start (" + r.status + ").");
        return r.json();
      });
  }
  function encode(cred) {
    var resp = cred.response, out = {
      id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: { clientDataJSON: b64u(resp.clientDataJSON) }
    };
    if (resp.attestationObject) {
      out.response.attestationObject = b64u(resp.attestationObject);
      if (resp.getTransports) out.response.transports = resp.getTransports();
    } else {
      out.response.authenticatorData = b64u(resp.authenticatorData);
      out.response.signature = b64u(resp.signature);
      if (resp.userHandle) out.response.userHandle = b64u(resp.userHandle);
    }
    return JSON.stringify(out);
  }
  function post(form, ceremony, credential) {
    form.querySelector("input[name=passkey_ceremony]").value = ceremony;
    form.querySelector("input[name=passkey_credential]").value = credential;
    form.submit();
  }
  function failed(el, err) {
    el.hidden = false;
    el.textContent = "No passkey was used: " + (err && err.message ? err.message : err);
  }
  function supported() {
    return window.PublicKeyCredential && navigator.credentials;
  }

  // Sign in: the answer is posted like the login form (its action, CSRF
  // token and hidden fields), as a form of its own made here, so the page
  // keeps one form without JavaScript.
  var signin = document.getElementById("passkey-signin");
  if (signin && supported()) {
    var login = document.querySelector("form[method=post]"), err = document.getElementById("passkey-error");
    var form = document.createElement("form");
    form.method = "post";
    form.action = login.getAttribute("action");
    form.hidden = true;
    login.querySelectorAll("input[type=hidden]").forEach(function (i) { form.appendChild(i.cloneNode()); });
    ["passkey_ceremony", "passkey_credential"].forEach(function (name) {
      var i = document.createElement("input");
      i.type = "hidden";
      i.name = name;
      form.appendChild(i);
    });
    document.body.appendChild(form);
    signin.hidden = false;
    signin.addEventListener("click", function () {
      begin(signin.dataset.begin, form).then(function (b) {
        var pk = b.options.publicKey;
        pk.challenge = unb64u(pk.challenge);
        ids(pk.allowCredentials);
        return navigator.credentials.get({ publicKey: pk }).then(function (cred) {
          post(form, b.ceremony, encode(cred));
        });
      }).catch(function (e) { failed(err, e); });
    });
  }

  // Add a passkey on the account page.
  var add = document.getElementById("passkey-add");
  if (add && supported()) {
    var addErr = document.getElementById("passkey-error");
    add.addEventListener("submit", function (ev) {
      ev.preventDefault();
      begin(add.dataset.begin, add).then(function (b) {
        var pk = b.options.publicKey;
        pk.challenge = unb64u(pk.challenge);
        pk.user.id = unb64u(pk.user.id);
        ids(pk.excludeCredentials);
        return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
          post(add, b.ceremony, encode(cred));
        });
      }).catch(function (e) { failed(addErr, e); });
    });
  }
})();
