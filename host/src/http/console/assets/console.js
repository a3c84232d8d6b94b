// Switchyard console: JSON API forms, live updates over SSE, small helpers.
// Loaded as an ES module on every console page (strict mode, deferred).

const LIVE_KINDS = ['message', 'status', 'conversation', 'insights', 'access', 'notification', 'reset'];

const csrfToken = (form) =>
  form?.querySelector('input[name="_csrf"]')?.value ||
  document.querySelector('meta[name="csrf-token"]')?.content || '';

// New element with properties (text only ever via textContent) and attributes.
function make(tag, props, attrs = {}) {
  const el = Object.assign(document.createElement(tag), props);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

// Polite screen-reader announcement in #announce (created on demand).
function announce(text) {
  if (!text) return;
  const el = document.getElementById('announce') ||
    document.body.appendChild(make('div', { id: 'announce', className: 'visually-hidden' }, { 'aria-live': 'polite' }));
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 50); // re-announce identical text
}

// ---- API forms --------------------------------------------------------

// Set obj.a.b.c = value for the dotted path "a.b.c".
function put(obj, path, value) {
  const keys = path.split('.');
  if (keys.some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype')) return;
  const last = keys.pop();
  let o = obj;
  for (const k of keys) o = (o[k] !== null && typeof o[k] === 'object') ? o[k] : (o[k] = {});
  o[last] = value;
}

// Build the JSON body from a form's controls (dotted names nest; data-type converts).
function formJSON(form) {
  const out = {};
  for (const el of form.elements) {
    const { name, type } = el;
    if (!name || name === '_csrf' || el.disabled || el.matches('button, fieldset, output, input[type=file], input[type=submit], input[type=reset], input[type=button]')) continue;
    let value;
    if (type === 'checkbox') {
      value = 'list' in el.dataset
        ? [...form.elements].filter((c) => c.name === name && c.checked && !c.disabled).map((c) => c.value)
        : el.checked;
    } else if (type === 'radio') {
      if (!el.checked) continue; value = el.value;
    } else if (el.multiple && el.tagName === 'SELECT') {
      value = [...el.selectedOptions].map((o) => o.value);
    } else {
      // A mailed link's token stays in the address; the page never renders it.
      const raw = el.dataset.fromQuery ? (new URLSearchParams(location.search).get(el.dataset.fromQuery) || '') : el.value;
      const empty = raw.trim() === '';
      switch (el.dataset.type) {
        case 'number': if (empty) continue; value = Number(raw); break;
        case 'lines': value = raw.split(/\r?\n/).map((l) => l.trim()).filter(Boolean); break;
        case 'json':
          if (empty) continue;
          try { value = JSON.parse(raw); } catch { throw new Error(`${el.labels?.[0]?.textContent.trim() || name}: invalid JSON`); }
          break;
        case 'null-if-empty': value = empty ? null : raw; break;
        default:
          if (raw === '' && !('keepEmpty' in el.dataset)) continue;
          value = raw;
      }
    }
    put(out, name, value);
  }
  return out;
}

// Plain fields as a query string (uploads and GET requests carry no JSON body).
function withQuery(url, form) {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (k !== '_csrf' && typeof v === 'string' && v !== '') q.append(k, v);
  return q.size ? `${url}${url.includes('?') ? '&' : '?'}${q}` : url;
}

function showError(form, message) {
  const box = form.querySelector('.form-error') ||
    form.insertBefore(make('p', { className: 'form-error' }, { role: 'alert' }), form.firstChild);
  if (!box.hasAttribute('tabindex')) box.tabIndex = -1;
  box.hidden = false;
  box.textContent = message;
  // Flag fields the message names as a word, e.g. "display_name is too long".
  const words = message.split(/[^\w.]+/).map((w) => w.replace(/\.+$/, ''));
  for (const f of form.elements) if (f.name && f.type !== 'hidden' && words.includes(f.name)) f.setAttribute('aria-invalid', 'true');
  box.focus();
}

function clearError(form) {
  form.querySelector('.form-error')?.replaceChildren();
  for (const f of form.querySelectorAll('[aria-invalid]')) f.removeAttribute('aria-invalid');
}

// A template that is one whole placeholder takes a URL of this origin as it is (the redirect
// flow's dialog_url, a page of this host); otherwise values are encoded into the path.
function sameOrigin(value) {
  try {
    const u = new URL(String(value ?? ''), location.href);
    return u.origin === location.origin ? u.href : '/console';
  } catch { return '/console'; }
}
const fill = (template, data) => /^\{\w+\}$/.test(template)
  ? sameOrigin(data?.[template.slice(1, -1)])
  : template.replace(/\{(\w+)\}/g, (m, k) => (['string', 'number'].includes(typeof data?.[k]) ? encodeURIComponent(data[k]) : m));

async function submitApi(form, submitter) {
  if (form.getAttribute('aria-busy') === 'true') return;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  clearError(form);
  const method = (form.dataset.method || 'POST').toUpperCase();
  const headers = { accept: 'application/json', 'x-csrf-token': csrfToken(form) };
  // Which membership acts, for routes without a tenant or partner in the path.
  if (form.dataset.context) headers['switchyard-context'] = form.dataset.context;
  const upload = 'upload' in form.dataset, noBody = method === 'GET' || method === 'HEAD';
  let url = form.dataset.api, body;
  try {
    if (upload || noBody) url = withQuery(url, form);
    if (upload) {
      body = form.querySelector('input[type=file]')?.files?.[0];
      if (!body) throw new Error(form.dataset.noFile || 'Choose a file first.');
      headers['content-type'] = form.dataset.contentType || body.type || 'application/octet-stream';
    } else if (!noBody) {
      const data = formJSON(form);
      if (submitter?.name) put(data, submitter.name, submitter.value);
      if (Object.keys(data).length || method !== 'DELETE') {
        body = JSON.stringify(data);
        headers['content-type'] = 'application/json';
      }
    }
  } catch (e) { return showError(form, e.message); }
  const button = submitter || form.querySelector('button:not([type=button], [type=reset]), input[type=submit]');
  const busy = (on) => {
    if (on) form.setAttribute('aria-busy', 'true'); else form.removeAttribute('aria-busy');
    if (button) button.disabled = on;
  };
  busy(true);
  let data = null;
  try {
    const res = await fetch(url, { method, headers, body, credentials: 'same-origin' });
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (res.status === 401 && !('noAuthRedirect' in form.dataset) && !location.pathname.startsWith('/console/sign-in')) {
      const signIn = location.pathname.startsWith('/console/operator') ? '/console/operator/sign-in' : '/console/sign-in';
      return location.assign(`${signIn}?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    if (!res.ok) {
      const plain = (res.headers.get('content-type') || '').startsWith('text/plain') ? text.trim().slice(0, 300) : '';
      throw new Error(data?.error?.message || plain || `Request failed (${res.status} ${res.statusText})`.trim());
    }
  } catch (e) {
    busy(false);
    return showError(form, e instanceof TypeError ? (form.dataset.offline || 'Network error — check your connection and try again.') : e.message);
  }

  // Success. Navigating pages keep the button disabled so it cannot be sent twice.
  announce(form.dataset.done);
  if ('reset' in form.dataset) {
    busy(false);
    form.reset();
    form.querySelector('textarea, input:not([type=hidden])')?.focus();
    queueRefresh('*');
  } else if (form.dataset.next && form.dataset.next !== 'reload') {
    location.assign(fill(form.dataset.next, data));
  } else {
    location.reload();
  }
}

// Delegated, so forms inside live-refreshed regions keep working.
document.addEventListener('submit', (e) => {
  const form = e.target;
  if (!(form instanceof HTMLFormElement) || !form.matches('form[data-api]')) return;
  e.preventDefault();
  submitApi(form, e.submitter);
});

// ---- Live updates -----------------------------------------------------

let pending = new Set(), timer = 0, inFlight = false;
function queueRefresh(kind) {
  pending.add(kind);
  clearTimeout(timer);
  timer = setTimeout(refresh, 250);
}

const atBottom = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 32;

// Whether a region (or the unread badge) wants one of these events: pages without one are not
// fetched again, so a stream of webhooks cannot make a heavy page render over and over.
function wanted(kinds, all) {
  if (all) return true;
  return [...document.querySelectorAll('[data-live][id]')].some((el) => {
    const only = el.dataset.live.split(/\s+/).filter(Boolean);
    return !only.length || only.some((k) => kinds.has(k));
  });
}

// Only the unread count, from the API (pages without a live region are not fetched again).
async function badge() {
  const events = document.body.dataset.events;
  if (!events) return;
  try {
    const res = await fetch(events.replace(/\/events$/, '/notifications?limit=1&unread=true'),
      { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    if (!res.ok) return;
    const n = String((await res.json()).unread ?? 0);
    for (const c of document.querySelectorAll('.count[data-unread]')) {
      c.dataset.unread = n;
      c.lastChild.textContent = n;
    }
  } catch { /* offline: the next event tries again */ }
}

async function refresh() {
  if (inFlight) { timer = setTimeout(refresh, 250); return; }
  const kinds = pending;
  pending = new Set();
  const all = kinds.has('*') || kinds.has('reset');
  if (!wanted(kinds, all)) {
    if (kinds.has('notification')) badge();
    return;
  }
  inFlight = true;
  try {
    const res = await fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin', cache: 'no-store' });
    if (!res.ok || res.redirected) return; // e.g. session expired: leave the page as it is
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const scrolls = [...document.querySelectorAll('.messages')].map((m) => (atBottom(m) ? Infinity : m.scrollTop));
    const focused = document.activeElement;
    for (const el of document.querySelectorAll('[data-live][id]')) {
      const only = el.dataset.live.split(/\s+/).filter(Boolean);
      if (!all && only.length && !only.some((k) => kinds.has(k))) continue;
      const fresh = doc.getElementById(el.id);
      if (!fresh || (el.contains(focused) && focused.matches('input, textarea, select'))) continue;
      el.replaceChildren(...[...fresh.childNodes].map((n) => document.importNode(n, true)));
      if (fresh.className !== el.className) el.className = fresh.className;
      localTimes(el);
    }
    const counts = doc.querySelectorAll('.count[data-unread]');
    document.querySelectorAll('.count[data-unread]').forEach((c, i) => {
      const f = counts[i] || counts[0];
      if (!f) return;
      c.dataset.unread = f.dataset.unread;
      c.replaceChildren(...[...f.childNodes].map((n) => document.importNode(n, true)));
    });
    // Replaced lists start at the top: restore, or stay pinned to the newest message.
    document.querySelectorAll('.messages').forEach((m, i) => { m.scrollTop = Math.min(scrolls[i] ?? Infinity, m.scrollHeight); });
    document.body.dataset.refreshed = String(Date.now());
  } catch { /* network hiccup: the next event retries */ } finally {
    inFlight = false;
  }
}

function liveUpdates(url) {
  const es = new EventSource(url);
  // Closed as the page goes: a browser holds few connections per host, and a page kept for
  // "back" must not keep its stream (it opens a new one if shown again).
  addEventListener('pagehide', () => es.close(), { once: true });
  addEventListener('pageshow', (e) => { if (e.persisted) liveUpdates(url); }, { once: true });
  let errors = 0;
  es.addEventListener('open', () => { errors = 0; });
  for (const kind of LIVE_KINDS) es.addEventListener(kind, () => { errors = 0; queueRefresh(kind); });
  es.addEventListener('error', () => {
    if (es.readyState !== EventSource.CLOSED && ++errors < 5) return;
    es.close();
    const text = document.body.dataset.livePaused || 'Live updates paused — reload to resume';
    const note = make('p', { className: 'notice warn live-paused', textContent: text }, { role: 'status' });
    const main = document.querySelector('main') || document.body;
    const h1 = main.querySelector('h1');
    h1 ? h1.after(note) : main.prepend(note);
  });
}

// ---- Little things ----------------------------------------------------

// <time datetime data-local[="date"|"time"]>: show in the viewer's locale and zone.
const formats = {
  date: new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' }),
  time: new Intl.DateTimeFormat(undefined, { timeStyle: 'short' }),
  '': new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }),
};
function localTimes(root = document) {
  for (const t of root.querySelectorAll('time[datetime][data-local]')) {
    const d = new Date(t.dateTime);
    if (Number.isNaN(d.getTime())) continue;
    if (!t.title) t.title = d.toLocaleString();
    t.textContent = (formats[t.dataset.local] || formats['']).format(d);
  }
}

// button[data-copy="id"]: copy that element's text; show data-copied for 2 s.
async function copy(button) {
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
  } catch {
    // Insecure context (plain http) or denied: fall back to selecting + execCommand.
    getSelection().selectAllChildren(source);
    if (!document.execCommand('copy')) return;
  }
  const label = button.dataset.copied;
  if (!label) return;
  button.dataset.label ??= button.textContent; // original text, kept across quick re-clicks
  button.textContent = label;
  announce(label);
  clearTimeout(button.copyTimer);
  button.copyTimer = setTimeout(() => { button.textContent = button.dataset.label; }, 2000);
}

// Twilio's sender finder: asks the API for the account's WhatsApp senders with the SID and
// token typed in the form, and offers them as the sender field's suggestions.
async function findSenders(button) {
  const form = button.form;
  const status = button.parentElement.querySelector('.status');
  const list = document.getElementById(button.dataset.list);
  const value = (id) => document.getElementById(id)?.value.trim() || '';
  clearError(form);
  button.disabled = true;
  try {
    const res = await fetch(button.dataset.senders, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': csrfToken(form) },
      body: JSON.stringify({ account_sid: value(button.dataset.sid), auth_token: value(button.dataset.token) }),
    });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new Error(data?.error?.message || `Request failed (${res.status})`);
    const senders = data?.data || [];
    list.replaceChildren(...senders.map((s) => make('option', {
      value: s.sender_id,
      label: [s.name, s.online ? s.status : `${s.status} ${button.dataset.offline}`].filter(Boolean).join(' · '),
    })));
    status.textContent = senders.length
      ? button.dataset.found.replace('{count}', String(senders.length))
      : button.dataset.none;
    const target = document.getElementById(button.dataset.target);
    if (target && !target.value && senders.length === 1) target.value = senders[0].sender_id;
    target?.focus();
  } catch (e) {
    status.textContent = '';
    showError(form, e instanceof TypeError ? (form.dataset.offline || 'Network error — check your connection and try again.') : e.message);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener('click', (e) => {
  const button = e.target.closest?.('button[data-copy]');
  if (button) { e.preventDefault(); copy(button); }
  const finder = e.target.closest?.('button[data-senders]');
  if (finder) { e.preventDefault(); findSenders(finder); }
});
document.addEventListener('change', (e) => {
  if (e.target.matches?.('form.filters select[data-autosubmit]')) e.target.form?.requestSubmit();
});

// ---- Start --------------------------------------------------------------
localTimes();
for (const m of document.querySelectorAll('.messages')) m.scrollTop = m.scrollHeight; // newest first in view
if (document.body.dataset.events && 'EventSource' in window) liveUpdates(document.body.dataset.events);
