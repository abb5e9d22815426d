import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { get, getSessionToken, onUnauthorized, post, setSessionToken } from '../api/client';
import type { LoginResponse, Me } from '../api/types';

interface Session {
  /** `undefined` while the stored session is being checked. */
  user: Me | null | undefined;
  login: (username: string, password: string) => Promise<Me>;
  /** Signs in with the one-time code of a finished single sign-on (`/login#sso=<code>`). */
  loginWithSso: (code: string) => Promise<Me>;
  logout: () => Promise<void>;
  changePassword: (currentPassword: string, newPassword: string) => Promise<void>;
  refresh: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

/** The signed-in user for the stored session token; a token the API refuses is dropped (`null`). */
async function fetchUser(): Promise<Me | null> {
  try {
    return await get<Me>('/auth/me');
  } catch {
    setSessionToken(null);
    return null;
  }
}

export function SessionProvider({ children, initialUser }: { children: ReactNode; initialUser?: Me | null }) {
  const [user, setUser] = useState<Me | null | undefined>(initialUser !== undefined ? initialUser : getSessionToken() ? undefined : null);
  const queryClient = useQueryClient();

  const refresh = useCallback(async () => {
    if (!getSessionToken()) {
      setUser(null);
      return;
    }
    setUser(await fetchUser());
  }, []);

  // Without a stored token the user starts as `null` (see useState above): there is nothing to check.
  useEffect(() => {
    if (initialUser === undefined && getSessionToken()) void fetchUser().then(setUser);
  }, [initialUser]);

  useEffect(
    () =>
      onUnauthorized(() => {
        setSessionToken(null);
        queryClient.clear();
        setUser(null);
      }),
    [queryClient],
  );

  // The password and the single sign-on exchanges answer alike: a session token, then `/auth/me`.
  const signIn = useCallback(
    async (path: string, body: unknown) => {
      const response = await post<LoginResponse>(path, body);
      setSessionToken(response.token);
      queryClient.clear();
      const me = await get<Me>('/auth/me');
      setUser(me);
      return me;
    },
    [queryClient],
  );
  const login = useCallback((username: string, password: string) => signIn('/auth/login', { username, password }), [signIn]);
  const loginWithSso = useCallback((code: string) => signIn('/auth/oidc/session', { code }), [signIn]);

  const logout = useCallback(async () => {
    try {
      await post('/auth/logout');
    } catch {
      // The session may already be gone; signing out locally is what matters.
    }
    setSessionToken(null);
    queryClient.clear();
    setUser(null);
  }, [queryClient]);

  const changePassword = useCallback(async (currentPassword: string, newPassword: string) => {
    await post('/auth/password', { current_password: currentPassword, new_password: newPassword });
    // A password change may revoke other sessions; this one is re-read.
    try {
      setUser(await get<Me>('/auth/me'));
    } catch {
      setUser(null);
    }
  }, []);

  const value = useMemo(
    () => ({ user, login, loginWithSso, logout, changePassword, refresh }),
    [user, login, loginWithSso, logout, changePassword, refresh],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}
