// The API client: bearer token from the session, one error type, and a distinct error for
// endpoints this server does not have (yet), so views can say so instead of failing.

const TOKEN_KEY = 'caravan.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

/** The server has no such route: the feature is not available on this server. */
export class NotAvailable extends ApiError {
  constructor(path) {
    super(404, 'not_available', path);
    this.path = path;
  }
}

let unauthorizedHandler = null;

export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function isMissingRoute(status, error) {
  if (status === 405) return true;
  return status === 404 && /route/i.test(error.message || '');
}

export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', e.message);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const error = (data && data.error) || {};
  if (isMissingRoute(response.status, error)) throw new NotAvailable(path);
  if (response.status === 401 && unauthorizedHandler) unauthorizedHandler();
  throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText);
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body ?? {});

/** `path` with the non-empty entries of `params` as its query string. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** The first array found under one of `keys` of `data` (or `data` itself if it is one). */
export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const key of keys) {
    if (data && Array.isArray(data[key])) return data[key];
  }
  return [];
}
