// /login: sign in and create an account on one page. Honours ?redirect=
// (same-site paths only) and shows the Turnstile widget on sign-up when
// the server has a site key.
import { get, post, describeError, safeRedirect } from './api.js';
import { toast } from './ui.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const target = safeRedirect(params.get('redirect'));

const state = {
  mode: 'signin',
  info: null,
  turnstileToken: '',
  widgetId: null,
  scriptLoading: null,
  busy: false,
};

const MIN_PASSWORD = 8;
const MAX_PASSWORD_BYTES = 1024;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function setFieldError(name, message) {
  const input = $(name);
  const err = $(`${name}-error`);
  if (err) err.textContent = message || '';
  if (input) {
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}

function setFormError(message) {
  const box = $('form-alert');
  box.textContent = message || '';
  box.classList.toggle('hidden', !message);
}

function clearErrors() {
  for (const f of ['email', 'password', 'confirm', 'turnstile']) setFieldError(f, '');
  setFormError('');
}

function turnstileEnabled() {
  return Boolean(state.info?.turnstile_site_key && state.info?.turnstile_script_url);
}

function setMode(mode) {
  state.mode = mode;
  const signup = mode === 'signup';
  $('tab-signin').setAttribute('aria-selected', String(!signup));
  $('tab-signup').setAttribute('aria-selected', String(signup));
  $('tab-signin').tabIndex = signup ? -1 : 0;
  $('tab-signup').tabIndex = signup ? 0 : -1;
  $('auth-form').setAttribute('aria-labelledby', signup ? 'tab-signup' : 'tab-signin');
  $('auth-title').textContent = signup ? 'Create your account' : 'Sign in to Flamingo Sync';
  $('auth-sub').textContent = signup
    ? 'One account keeps your Flamingo data in step on every device.'
    : 'Manage your devices and what syncs between them.';
  $('confirm-field').classList.toggle('hidden', !signup);
  $('password-hint').classList.toggle('hidden', !signup);
  $('password').autocomplete = signup ? 'new-password' : 'current-password';
  $('submit').textContent = signup ? 'Create account' : 'Sign in';
  $('turnstile-field').classList.toggle('hidden', !(signup && turnstileEnabled()));
  clearErrors();
  if (signup && turnstileEnabled()) showTurnstile();
}

const turnstileApi = () => (typeof window.turnstile?.render === 'function' ? window.turnstile : null);

function loadTurnstileScript() {
  if (turnstileApi()) return Promise.resolve(turnstileApi());
  if (!state.scriptLoading) {
    state.scriptLoading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = state.info.turnstile_script_url;
      s.async = true;
      s.addEventListener('load', () => (turnstileApi() ? resolve(turnstileApi()) : reject(new Error('no turnstile'))));
      s.addEventListener('error', () => reject(new Error('script failed')));
      document.head.appendChild(s);
    }).catch((e) => {
      state.scriptLoading = null;
      throw e;
    });
  }
  return state.scriptLoading;
}

async function showTurnstile() {
  if (state.widgetId !== null) return;
  try {
    const ts = await loadTurnstileScript();
    if (state.widgetId !== null) return;
    state.widgetId = ts.render($('turnstile-widget'), {
      sitekey: state.info.turnstile_site_key,
      theme: 'auto',
      callback: (token) => {
        state.turnstileToken = token;
        setFieldError('turnstile', '');
      },
      'expired-callback': () => { state.turnstileToken = ''; },
      'error-callback': () => {
        state.turnstileToken = '';
        setFieldError('turnstile', 'The human check could not run. Reload the page and try again.');
      },
    });
  } catch {
    setFieldError('turnstile', 'The human check could not be loaded. Check your connection and reload the page.');
  }
}

function resetTurnstile() {
  state.turnstileToken = '';
  if (turnstileApi() && state.widgetId !== null) {
    try { turnstileApi().reset(state.widgetId); } catch { /* gone */ }
  }
}

function validate() {
  const email = $('email').value.trim();
  const password = $('password').value;
  const signup = state.mode === 'signup';
  let ok = true;
  let first = null;
  const fail = (field, msg) => {
    setFieldError(field, msg);
    ok = false;
    first = first || field;
  };
  clearErrors();
  if (!email) fail('email', 'Enter your email address.');
  else if (!EMAIL_RE.test(email) || email.length > 254) fail('email', 'Enter a valid email address, like name@example.com.');
  if (!password) fail('password', 'Enter your password.');
  else if (signup && password.length < MIN_PASSWORD) fail('password', `Use at least ${MIN_PASSWORD} characters.`);
  else if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) fail('password', 'This password is too long.');
  if (signup) {
    if (!$('confirm').value) fail('confirm', 'Type the password again.');
    else if ($('confirm').value !== password) fail('confirm', 'The passwords do not match.');
    if (turnstileEnabled() && !state.turnstileToken) {
      setFieldError('turnstile', 'Complete the human check first.');
      ok = false;
    }
  }
  if (first) $(first).focus();
  return ok ? { email, password } : null;
}

async function submit(ev) {
  ev.preventDefault();
  if (state.busy) return;
  const v = validate();
  if (!v) return;
  const signup = state.mode === 'signup';
  const body = { email: v.email, password: v.password };
  if (signup && turnstileEnabled()) body.turnstile_token = state.turnstileToken;
  state.busy = true;
  const btn = $('submit');
  btn.disabled = true;
  btn.textContent = signup ? 'Creating account…' : 'Signing in…';
  const r = await post(signup ? '/api/auth/signup' : '/api/auth/login', body);
  if (r.ok) {
    window.location.assign(target);
    return;
  }
  state.busy = false;
  btn.disabled = false;
  btn.textContent = signup ? 'Create account' : 'Sign in';
  if (r.error === 'invalid_credentials') {
    setFormError('The email or password is not right.');
    $('password').focus();
  } else if (r.error === 'email_taken') {
    setFieldError('email', 'An account with this email already exists. Sign in instead.');
    $('email').focus();
  } else if (r.error === 'turnstile_failed') {
    resetTurnstile();
    setFieldError('turnstile', 'The human check failed. Try it again.');
  } else if (r.error === 'invalid_request' && /password/i.test(r.message)) {
    setFieldError('password', r.message);
    $('password').focus();
  } else if (r.error === 'invalid_request' && /email/i.test(r.message)) {
    setFieldError('email', r.message);
    $('email').focus();
  } else {
    setFormError(describeError(r));
  }
  if (signup && r.error !== 'turnstile_failed') resetTurnstile();
}

function onTabKey(ev) {
  if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
  if ($('tab-signup').hidden) return;
  const next = state.mode === 'signin' ? 'signup' : 'signin';
  setMode(next);
  $(`tab-${next}`).focus();
}

async function start() {
  const info = await get('/api/info');
  if (info.ok) state.info = info.data;
  else toast('The server cannot be reached', describeError(info), 'error');
  if (state.info && state.info.registration_open === false) {
    $('tab-signup').hidden = true;
    $('closed-note').classList.remove('hidden');
  }
  $('tab-signin').addEventListener('click', () => setMode('signin'));
  $('tab-signup').addEventListener('click', () => setMode('signup'));
  $('tab-signin').addEventListener('keydown', onTabKey);
  $('tab-signup').addEventListener('keydown', onTabKey);
  $('auth-form').addEventListener('submit', submit);
  setMode(params.get('mode') === 'signup' && state.info?.registration_open !== false ? 'signup' : 'signin');
  $('email').focus();
}

start();
