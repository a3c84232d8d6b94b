// Meta Embedded Signup for the "connect" page, plus the /console/signup-done popup relay.
// Production uses Facebook's JS SDK; any other data-dialog is a self-hosted/test dialog in a popup.

const DONE = '/console/signup-done';
const EXTRAS = { setup: {}, sessionInfoVersion: '3' };

// An Error the UI shows; `card` is the state the connect card returns to, `quiet` skips error styling.
const failure = (message, card = 'state-error', quiet = false) => Object.assign(new Error(message), { card, quiet });

function relayCode() {
  const q = new URLSearchParams(location.search);
  history.replaceState(null, '', DONE); // keep the code out of history
  window.opener?.postMessage({
    type: 'switchyard-signup-code', code: q.get('code'), state: q.get('state'),
    error: q.get('error_description') || q.get('error'),
  }, location.origin);
  window.close();
}

const isFacebook = (origin) => {
  try {
    const u = new URL(origin);
    return u.protocol === 'https:' && (u.hostname === 'facebook.com' || u.hostname.endsWith('.facebook.com'));
  } catch { return false; }
};

function nonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// Waits for the authorization code and the WA_EMBEDDED_SIGNUP session event.
// trusted(ev) vets session-event senders; a matching `state` accepts the code relayed by signup-done.
function waitForSignup(d, trusted, state) {
  let code = null, ids = null, timer = 0, over = false, settle;
  const cleanups = [];
  const promise = new Promise((resolve, reject) => {
    settle = (err, value) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      cleanups.forEach((f) => f());
      err ? reject(err) : resolve(value);
    };
  });
  const cancelled = () => failure(d.cancelled || 'Signup was cancelled.', 'state-none', true);
  const flow = {
    promise, cleanups,
    fail: (err) => settle(err),
    code(value, why) {
      if (code || over) return;
      if (!value) return settle(why ? failure(why, 'state-none') : cancelled());
      code = value;
      if (ids) settle(null, { code, ...ids });
      else timer = setTimeout(() => settle(null, { code }), 2000); // the session event may never come
    },
  };
  const onMessage = (ev) => {
    let msg = ev.data;
    if (typeof msg === 'string') { try { msg = JSON.parse(msg); } catch { return; } }
    if (msg?.type === 'switchyard-signup-code' && state && ev.origin === location.origin && msg.state === state) {
      flow.code(msg.code, msg.error);
    } else if (msg?.type === 'WA_EMBEDDED_SIGNUP' && trusted(ev)) {
      if (msg.event === 'FINISH' || msg.event === 'FINISH_ONLY_WABA') {
        ids = { waba_id: msg.data?.waba_id, phone_number_id: msg.data?.phone_number_id };
        if (code) settle(null, { code, ...ids });
      } else if (msg.event === 'CANCEL') {
        settle(cancelled());
      } else if (msg.event === 'ERROR') {
        settle(failure(msg.data?.error_message || d.failed || 'Signup failed.', 'state-none'));
      }
    }
  };
  window.addEventListener('message', onMessage);
  cleanups.push(() => window.removeEventListener('message', onMessage));
  return flow;
}

let sdk = null, ready = null; // load promise / initialised FB object
function loadSdk(d) {
  sdk ??= new Promise((resolve, reject) => {
    const script = Object.assign(document.createElement('script'), { src: d.sdk, async: true, crossOrigin: 'anonymous' });
    script.onload = () => {
      if (!window.FB) return reject(new Error('SDK'));
      window.FB.init({ appId: d.appId, autoLogAppEvents: false, xfbml: false, version: d.graphVersion });
      resolve(ready = window.FB);
    };
    script.onerror = reject;
    document.head.append(script);
  }).catch(() => { sdk = null; throw failure(d.sdkFailed || 'Could not load Facebook. Check your connection or ad blocker.'); });
  return sdk;
}

// Production: FB.login opens Meta's dialog; the session event comes from *.facebook.com.
function viaSdk(d) {
  const flow = waitForSignup(d, (ev) => isFacebook(ev.origin));
  const login = (FB) => FB.login((r) => flow.code(r?.authResponse?.code), {
    config_id: d.configId, response_type: 'code', override_default_response_type: true, extras: EXTRAS,
  });
  // Call FB.login synchronously when the SDK is ready, so the popup counts as user-initiated.
  if (ready) login(ready); else loadSdk(d).then(login, flow.fail);
  return flow.promise;
}

// Test / self-hosted dialog in a popup; the code comes back through /console/signup-done.
function viaPopup(d) {
  const origin = new URL(d.dialog).origin, state = nonce();
  const params = new URLSearchParams({
    client_id: d.appId, config_id: d.configId, response_type: 'code', override_default_response_type: 'true',
    display: 'popup', redirect_uri: location.origin + DONE, state, extras: JSON.stringify(EXTRAS),
  });
  const popup = window.open(`${d.dialog.replace(/\/+$/, '')}/dialog/oauth?${params}`, 'switchyard-signup', 'popup,width=600,height=700');
  const flow = waitForSignup(d, (ev) => ev.origin === origin, state);
  if (!popup) flow.fail(failure(d.blocked || 'The sign-in window was blocked. Allow pop-ups and try again.', 'state-none'));
  const poll = setInterval(() => {
    if (popup?.closed) setTimeout(() => flow.code(null), 300); // let a last postMessage land first
  }, 500);
  flow.cleanups.push(() => { clearInterval(poll); if (popup && !popup.closed) popup.close(); });
  return flow.promise;
}

async function connect(form, got) {
  const d = form.dataset;
  const body = {
    endpoint: d.endpoint, flow: 'embedded', code: got.code,
    consent: { document_version: form.elements['consent.document_version']?.value, scopes: ['messaging'] },
  };
  if (got.waba_id) body.waba_id = got.waba_id;
  if (got.phone_number_id) body.phone_number_id = got.phone_number_id;
  const token = form.elements._csrf?.value || document.querySelector('meta[name="csrf-token"]')?.content || '';
  const res = await fetch(`/api/v1/tenants/${encodeURIComponent(d.tenant)}/connect/meta`, {
    method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': token },
  });
  if (res.status === 401) return location.assign(`/console/sign-in?next=${encodeURIComponent(location.pathname)}`);
  const data = await res.json().catch(() => null);
  const fill = (t) => t.replace(/\{(\w+)\}/g, (m, k) => (data?.[k] == null ? m : encodeURIComponent(data[k])));
  if (res.ok && data?.status === 'completed' && data.connection_id) return location.assign(fill(d.next));
  if (res.ok && data?.status === 'picking') return location.assign(fill(d.pick));
  const err = data?.error;
  throw failure((typeof err === 'string' ? err : err?.message) || d.failed || `Connection failed (${res.status}).`);
}

function setup(form) {
  const d = form.dataset;
  const status = form.querySelector('.status');
  const button = form.querySelector('button[type=submit], button:not([type])');
  const card = document.getElementById('connect-card');
  const production = ['www.facebook.com', 'facebook.com'].includes(new URL(d.dialog, location.href).hostname);
  const show = (text, error = false) => { if (status) { status.textContent = text; status.classList.toggle('error', error); } };
  const cardState = (s) => { card?.classList.remove('state-none', 'state-connecting', 'state-error'); card?.classList.add(s); };
  if (production) loadSdk(d).catch(() => {}); // preload so FB.login runs inside the click

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (button?.disabled) return;
    show(d.connecting || 'Connecting…');
    if (button) button.disabled = true;
    cardState('state-connecting');
    try {
      const got = await (production ? viaSdk(d) : viaPopup(d)); // both open their window synchronously
      await connect(form, got);
    } catch (err) {
      show(err.message || String(err), !err.quiet);
      if (button) button.disabled = false;
      cardState(err.card || 'state-error');
    }
  });
}

if (location.pathname === DONE) relayCode();
else {
  const form = document.getElementById('embedded-signup');
  if (form) setup(form);
}
