// api.js: fetch helpers for the admin API (/admin/api, with the page's
// session) and the editor's side panel form. State-changing requests carry the
// CSRF token the page was rendered with. Errors are the API's JSON body:
// {"error": {"code", "message", "problems"?}}.

export const API = '/admin/api';

export class HTTPError extends Error {
  constructor(status, body, headers) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

// etagRev reads the revision out of an ETag the API gave ("3").
export function etagRev(resp) {
  const m = /^"(\d+)"$/.exec((resp && resp.headers.get('ETag')) || '');
  return m ? Number(m[1]) : 0;
}

export function client(csrf) {
  async function call(method, url, { body, headers = {}, text = false } = {}) {
    const h = { ...headers };
    if (method !== 'GET') h['X-CSRF-Token'] = csrf;
    if (body !== undefined && typeof body !== 'string') {
      body = JSON.stringify(body);
    }
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const resp = await fetch(url, { method, headers: h, body, credentials: 'same-origin' });
    const ct = resp.headers.get('Content-Type') || '';
    const data = text ? await resp.text() : ct.includes('json') ? await resp.json() : await resp.text();
    if (!resp.ok) throw new HTTPError(resp.status, typeof data === 'string' ? null : data, resp.headers);
    return { data, resp };
  }
  return {
    get: (url, opts) => call('GET', url, opts),
    post: (url, opts) => call('POST', url, opts),
    put: (url, opts) => call('PUT', url, opts),
  };
}
