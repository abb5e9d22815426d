import { StrictMode } from 'react';
import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import { Route, Routes } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { getSessionToken } from '../api/client';
import { useSession } from '../auth/session';
import { LoginPage } from '../pages/Login';
import { me, mockApi, renderWith } from '../test/utils';

const LOGIN_URL = '/api/v1/auth/oidc/login';

/** Where a signed-in user lands: names them, so a test sees both the session and the navigation. */
function Home() {
  const { user } = useSession();
  return <div>home of {user?.username ?? 'nobody'}</div>;
}

/** The login page at `/login` (with `fragment` in the browser's URL, as the callback leaves it) beside the home page. */
function renderLogin(fragment = '') {
  window.history.replaceState(null, '', `/login${fragment}`);
  return renderWith(
    <StrictMode>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="/" element={<Home />} />
      </Routes>
    </StrictMode>,
    { role: null, path: '/login' },
  );
}

function calls(fetchMock: ReturnType<typeof mockApi>, method: string, path: string) {
  return fetchMock.mock.calls.filter(
    ([input, init]) => (init?.method ?? 'GET') === method && new URL(String(input), 'http://localhost').pathname === path,
  );
}

/** Lets the pending fetches and the query updates they cause run. */
async function settle() {
  for (let round = 0; round < 5; round += 1) await act(() => new Promise((resolve) => setTimeout(resolve, 0)));
}

afterEach(() => {
  window.history.replaceState(null, '', '/');
  vi.unstubAllGlobals();
});

describe('single sign-on on the login page', () => {
  it('offers the button only when single sign-on is enabled, and starts it with a full-page navigation', async () => {
    const fetchMock = mockApi({ 'GET /api/v1/auth/oidc': { enabled: false } });
    const { unmount } = renderLogin();
    await waitFor(() => expect(calls(fetchMock, 'GET', '/api/v1/auth/oidc')).toHaveLength(1));
    await settle();
    expect(screen.queryByRole('button', { name: /single sign-on/i })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeInTheDocument();
    unmount();

    // A failed info request hides it too.
    mockApi({});
    const failed = renderLogin();
    await settle();
    expect(screen.queryByRole('button', { name: /single sign-on/i })).not.toBeInTheDocument();
    failed.unmount();

    mockApi({ 'GET /api/v1/auth/oidc': { enabled: true, login_url: LOGIN_URL } });
    const assign = vi.fn();
    vi.stubGlobal('location', { ...window.location, assign });
    renderLogin();
    const button = await screen.findByRole('button', { name: /sign in with single sign-on/i });
    // The password form stays: local accounts are the way in when the identity provider is down.
    expect(screen.getByLabelText('Username')).toBeInTheDocument();
    expect(screen.getByText('or')).toBeInTheDocument();
    fireEvent.click(button);
    expect(assign).toHaveBeenCalledWith(LOGIN_URL);
  });

  it('exchanges the one-time code of #sso= once, after clearing it from the URL, and signs in', async () => {
    let hashWhenSent: string | null = null;
    const fetchMock = mockApi({
      'GET /api/v1/auth/oidc': { enabled: true, login_url: LOGIN_URL },
      'POST /api/v1/auth/oidc/session': () => {
        hashWhenSent = window.location.hash;
        return { token: 'sso-session', expires_at: null, user: me('operator') };
      },
      'GET /api/v1/auth/me': me('operator'),
    });
    renderLogin('#sso=abc');
    expect(screen.getByText('Signing you in…')).toBeInTheDocument();
    expect(screen.queryByLabelText('Username')).not.toBeInTheDocument();

    expect(await screen.findByText('home of operator')).toBeInTheDocument();
    // The code left the URL (and the history entry) before it was sent, and was sent once.
    expect(hashWhenSent).toBe('');
    expect(window.location.hash).toBe('');
    expect(window.location.pathname).toBe('/login');
    const exchanges = calls(fetchMock, 'POST', '/api/v1/auth/oidc/session');
    expect(exchanges).toHaveLength(1);
    expect(JSON.parse(String(exchanges[0][1]?.body))).toEqual({ code: 'abc' });
    // Signed in as the password login does: the token stored, then the user read with it.
    expect(getSessionToken()).toBe('sso-session');
    const meCalls = calls(fetchMock, 'GET', '/api/v1/auth/me');
    expect(meCalls).toHaveLength(1);
    expect(new Headers(meCalls[0][1]?.headers).get('Authorization')).toBe('Bearer sso-session');
  });

  it('shows the message of #sso_error= and clears it', async () => {
    const fetchMock = mockApi({ 'GET /api/v1/auth/oidc': { enabled: true, login_url: LOGIN_URL } });
    renderLogin('#sso_error=the+identity+provider+refused%3A+access_denied');
    expect(await screen.findByText('Single sign-on failed: the identity provider refused: access_denied')).toBeInTheDocument();
    expect(window.location.hash).toBe('');
    expect(window.location.pathname).toBe('/login');
    // The way back in stays open.
    expect(await screen.findByRole('button', { name: /sign in with single sign-on/i })).toBeInTheDocument();
    expect(screen.getByLabelText('Username')).toBeInTheDocument();
    expect(calls(fetchMock, 'POST', '/api/v1/auth/oidc/session')).toHaveLength(0);
  });

  it('shows a refused code in the API words and stays signed out', async () => {
    const fetchMock = mockApi({
      'GET /api/v1/auth/oidc': { enabled: true, login_url: LOGIN_URL },
      'POST /api/v1/auth/oidc/session': new Response(
        JSON.stringify({ error: { code: 'invalid_credentials', message: 'the sign-in code is unknown or expired', field: null } }),
        { status: 401 },
      ),
    });
    renderLogin('#sso=stale');
    expect(await screen.findByText('the sign-in code is unknown or expired (invalid_credentials)')).toBeInTheDocument();
    expect(window.location.hash).toBe('');
    expect(screen.getByLabelText('Username')).toBeInTheDocument();
    expect(screen.queryByText(/home of/)).not.toBeInTheDocument();
    expect(getSessionToken()).toBeNull();
    expect(calls(fetchMock, 'GET', '/api/v1/auth/me')).toHaveLength(0);
  });
});
