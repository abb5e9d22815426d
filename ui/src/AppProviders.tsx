import { type ReactNode, useState } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { App as AntApp, ConfigProvider } from 'antd';
import enUS from 'antd/es/locale/en_US';
import zhCN from 'antd/es/locale/zh_CN';
import { I18nextProvider, useTranslation } from 'react-i18next';
import i18n from './i18n';
import { SessionProvider } from './auth/session';
import type { Me } from './api/types';

function Localized({ children }: { children: ReactNode }) {
  const { i18n: instance } = useTranslation();
  return (
    <ConfigProvider locale={instance.language === 'zh' ? zhCN : enUS} theme={{ token: { colorPrimary: '#3358d4', borderRadius: 6 } }}>
      <AntApp>{children}</AntApp>
    </ConfigProvider>
  );
}

export function newQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: (count, error) => count < 1 && (error as { status?: number }).status === 0, refetchOnWindowFocus: false },
    },
  });
}

/** The React context providers every page needs around it (i18n, queries, Ant Design locale and theme, session); tests pass `initialUser` to skip the session check. */
export function AppProviders({ children, client, initialUser }: { children: ReactNode; client?: QueryClient; initialUser?: Me | null }) {
  const [queryClient] = useState(() => client ?? newQueryClient());
  return (
    <I18nextProvider i18n={i18n}>
      <QueryClientProvider client={queryClient}>
        <Localized>
          <SessionProvider initialUser={initialUser}>{children}</SessionProvider>
        </Localized>
      </QueryClientProvider>
    </I18nextProvider>
  );
}
