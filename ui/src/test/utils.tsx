import type { ReactElement } from 'react';
import { render } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { vi } from 'vitest';
import { AppProviders, newQueryClient } from '../AppProviders';
import type { Me, Role } from '../api/types';

export function me(role: Role): Me {
  return { id: `${role}-id`, username: role, display_name: '', role, must_change_password: false };
}

type Handler = (url: URL, init: RequestInit) => unknown;

/**
 * Replaces fetch with fixtures: `routes` maps "METHOD /api/v1/path" (no query) to a body or a
 * function of the request. Unknown routes answer 404 in the API's error shape. Returns the mock
 * so tests can look at the calls.
 */
export function mockApi(routes: Record<string, unknown | Handler>) {
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), 'http://localhost');
    const key = `${(init.method ?? 'GET').toUpperCase()} ${url.pathname}`;
    if (!(key in routes)) {
      return new Response(JSON.stringify({ error: { code: 'not_found', message: `no fixture for ${key}`, field: null } }), {
        status: 404,
        headers: { 'content-type': 'application/json' },
      });
    }
    const route = routes[key];
    const body = typeof route === 'function' ? (route as Handler)(url, init) : route;
    if (body instanceof Response) return body;
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  });
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

export function page<T>(items: T[]) {
  return { items, total: items.length, limit: 50, offset: 0 };
}

/** Renders inside the app's providers, signed in with `role` (and `user`'s fields over the default, such as `teams`). */
export function renderWith(
  ui: ReactElement,
  { role = 'admin', path = '/', user }: { role?: Role | null; path?: string; user?: Partial<Me> } = {},
) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <AppProviders client={newQueryClient()} initialUser={role ? { ...me(role), ...user } : null}>
        {ui}
      </AppProviders>
    </MemoryRouter>,
  );
}
