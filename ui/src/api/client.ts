// The one HTTP client of the UI: adds the session token, turns the admin API's error body
// (`{"error":{"code","message","field"}}`) into an ApiError, and tells the session layer when
// the session is gone so the UI can return to the login page.

const TOKEN_KEY = 'axongate.session';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  readonly currentVersion: number | null;

  constructor(status: number, code: string, message: string, field: string | null = null, currentVersion: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.currentVersion = currentVersion;
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function getSessionToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
}

export function setSessionToken(token: string | null): void {
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
  } else {
    localStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

export type Query = Record<string, string | number | boolean | undefined | null | string[]>;

/** `?a=1&b=2`, leaving out empty values; arrays repeat the name. */
export function queryString(query?: Query): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) value.forEach((item) => params.append(name, item));
    else params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

async function errorFrom(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  const error = (body as { error?: { code?: string; message?: string; field?: string | null; current_version?: number } } | null)?.error;
  return new ApiError(
    response.status,
    error?.code ?? `http_${response.status}`,
    error?.message ?? (response.statusText || `HTTP ${response.status}`),
    error?.field ?? null,
    error?.current_version ?? null,
  );
}

/** Performs a request against `/api/v1…` and returns the raw response (status checked). */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = getSessionToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, { ...init, headers });
  } catch (cause) {
    throw new ApiError(0, 'network', `the admin API cannot be reached (${(cause as Error).message})`);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && token) unauthorizedListeners.forEach((listener) => listener());
    throw error;
  }
  return response;
}

export async function api<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const response = await apiFetch(path + queryString(query), {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string, query?: Query) => api<T>('GET', path, undefined, query);
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body ?? {});
export const patch = <T>(path: string, body: unknown) => api<T>('PATCH', path, body);
export const put = <T>(path: string, body: unknown) => api<T>('PUT', path, body);
export const del = (path: string, query?: Query) => api<void>('DELETE', path, undefined, query);

/** Downloads an authenticated URL as a file (the bearer header cannot ride on a plain link). */
export async function download(path: string, filename: string): Promise<void> {
  const response = await apiFetch(path);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
