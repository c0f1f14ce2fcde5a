// The dashboard's only way to the server: the public JSON API, same
// origin. The session cookie is HttpOnly and goes along by itself; the
// browser adds the Origin header the server checks on every write.

/**
 * Calls the API. Resolves {ok, status, data, error, message} and never
 * throws: a network failure is {ok: false, status: 0, error: 'network'}.
 */
export async function api(method, path, body) {
  const opts = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch {
    return { ok: false, status: 0, error: 'network', message: 'The server cannot be reached. Check your connection and try again.' };
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (json && json.success === true) {
    return { ok: true, status: res.status, data: json.data };
  }
  return {
    ok: false,
    status: res.status,
    error: json?.error || 'http_error',
    message: json?.message || `The server answered ${res.status}.`,
    data: json?.data,
    retryAfter: Number(res.headers.get('Retry-After')) || 0,
  };
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const put = (path, body = {}) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

/** A message for people from an API failure. */
export function describeError(r) {
  if (!r) return 'Something went wrong.';
  if (r.error === 'rate_limited') {
    return r.retryAfter ? `Too many attempts. Try again in ${r.retryAfter} s.` : 'Too many attempts. Try again later.';
  }
  if (r.error === 'unavailable') return 'The server is busy right now; nothing was changed. Try again in a moment.';
  if (r.error === 'csrf_rejected') return 'The request was refused because it did not come from this page. Reload and try again.';
  return r.message || 'Something went wrong.';
}

/**
 * A same-site relative path to go to after signing in, or the fallback.
 * Only "/..." paths of this origin pass: no "//host", no "/\\host", no
 * scheme, no control characters (no open redirect).
 */
export function safeRedirect(value, fallback = '/dashboard') {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return fallback;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return fallback;
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return fallback;
  let url;
  try {
    url = new URL(value, window.location.origin);
  } catch {
    return fallback;
  }
  if (url.origin !== window.location.origin) return fallback;
  if (url.pathname === '/login') return fallback;
  return url.pathname + url.search + url.hash;
}

/** Sends the visitor to sign in, then back to where they are. */
export function toLogin() {
  const here = window.location.pathname + window.location.search;
  window.location.assign(`/login?redirect=${encodeURIComponent(here)}`);
}
