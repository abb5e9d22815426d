import { useEffect, useState } from 'react';
import { Alert, App, Button, Card, Divider, Form, Input, Space, Spin, Typography } from 'antd';
import { LockOutlined, SafetyCertificateOutlined, UserOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { useNavigate, useLocation } from 'react-router-dom';
import { useTranslation } from 'react-i18next';
import { get } from '../api/client';
import type { OidcInfo } from '../api/types';
import { useSession } from '../auth/session';
import { ErrorAlert } from '../components/errors';
import { LanguageSelect } from '../components/LanguageSelect';

function Centered({ children }: { children: React.ReactNode }) {
  return (
    <div style={{ minHeight: '100vh', display: 'flex', alignItems: 'center', justifyContent: 'center', background: '#f0f2f5' }}>
      <Space direction="vertical" align="center" size="large">
        {children}
        <LanguageSelect />
      </Space>
    </div>
  );
}

/**
 * What the single sign-on callback left in the URL fragment: `#sso=<one-time code>` after a
 * finished sign-in, `#sso_error=<form-urlencoded message>` after a failed one.
 */
function ssoFragment(): { code?: string; error?: string } | null {
  const hash = window.location.hash;
  if (!hash.startsWith('#sso=') && !hash.startsWith('#sso_error=')) return null;
  const params = new URLSearchParams(hash.slice(1));
  return { code: params.get('sso') ?? undefined, error: params.get('sso_error') ?? undefined };
}

export function LoginPage() {
  const { t } = useTranslation();
  const { login, loginWithSso } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [sso] = useState(ssoFragment);
  const [exchanging, setExchanging] = useState(sso?.code !== undefined);
  const oidc = useQuery({ queryKey: ['/auth/oidc'], queryFn: () => get<OidcInfo>('/auth/oidc'), staleTime: Infinity, retry: false });
  const ssoUrl = oidc.data?.enabled ? oidc.data.login_url : undefined;
  const target = (location.state as { from?: string } | null)?.from ?? '/';

  // The fragment leaves the URL (and the history) before the one-time code is used; it is read
  // again here, so a second run of the effect finds nothing left to exchange.
  useEffect(() => {
    const fragment = ssoFragment();
    if (!fragment) return;
    window.history.replaceState(window.history.state, '', `${window.location.pathname}${window.location.search}`);
    if (fragment.code === undefined) return;
    loginWithSso(fragment.code).then(
      () => navigate(target, { replace: true }),
      (caught: unknown) => {
        setError(caught);
        setExchanging(false);
      },
    );
  }, [loginWithSso, navigate, target]);

  const submit = async (values: { username: string; password: string }) => {
    setBusy(true);
    setError(null);
    try {
      await login(values.username, values.password);
      navigate(target, { replace: true });
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  if (exchanging) {
    return (
      <Centered>
        <Card title={t('login.title')} style={{ width: 380 }}>
          <Space>
            <Spin />
            {t('login.ssoSigningIn')}
          </Space>
        </Card>
      </Centered>
    );
  }

  return (
    <Centered>
      <Card title={t('login.title')} style={{ width: 380 }}>
        {sso?.error !== undefined && (
          <Alert type="error" showIcon message={t('login.ssoFailed', { message: sso.error })} style={{ marginBottom: 16 }} role="alert" />
        )}
        <ErrorAlert error={error} />
        <Form layout="vertical" onFinish={submit} requiredMark={false}>
          <Form.Item name="username" label={t('login.username')} rules={[{ required: true }]}>
            <Input prefix={<UserOutlined />} autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item name="password" label={t('login.password')} rules={[{ required: true }]}>
            <Input.Password prefix={<LockOutlined />} autoComplete="current-password" />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={busy}>
            {t('login.submit')}
          </Button>
        </Form>
        {ssoUrl && (
          <>
            <Divider plain>{t('login.or')}</Divider>
            <Button block icon={<SafetyCertificateOutlined />} onClick={() => window.location.assign(ssoUrl)}>
              {t('login.sso')}
            </Button>
          </>
        )}
      </Card>
    </Centered>
  );
}

/** The password form, forced after the first sign-in and offered on the profile page. */
export function ChangePasswordForm({ onDone }: { onDone?: () => void }) {
  const { t } = useTranslation();
  const { changePassword } = useSession();
  const { message } = App.useApp();
  const [form] = Form.useForm();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (values: { current_password: string; new_password: string }) => {
    setBusy(true);
    setError(null);
    try {
      await changePassword(values.current_password, values.new_password);
      void message.success(t('login.changed'));
      form.resetFields();
      onDone?.();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <ErrorAlert error={error} />
      <Form form={form} layout="vertical" onFinish={submit} requiredMark={false} style={{ maxWidth: 380 }}>
        <Form.Item name="current_password" label={t('login.current')} rules={[{ required: true }]}>
          <Input.Password autoComplete="current-password" />
        </Form.Item>
        <Form.Item
          name="new_password"
          label={t('login.newPassword')}
          rules={[{ required: true }, { min: 8, message: t('login.minLength') }]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item
          name="confirm"
          label={t('login.confirm')}
          dependencies={['new_password']}
          rules={[
            { required: true },
            ({ getFieldValue }) => ({
              validator: (_, value) =>
                !value || value === getFieldValue('new_password') ? Promise.resolve() : Promise.reject(new Error(t('login.mismatch'))),
            }),
          ]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={busy}>
          {t('login.changeSubmit')}
        </Button>
      </Form>
    </>
  );
}

export function ChangePasswordPage({ forced }: { forced?: boolean }) {
  const { t } = useTranslation();
  const { logout } = useSession();
  return (
    <Centered>
      <Card
        title={t('login.changeTitle')}
        style={{ width: 420 }}
        extra={
          forced && (
            <Button type="link" onClick={() => void logout()}>
              {t('app.signOut')}
            </Button>
          )
        }
      >
        {forced && <Typography.Paragraph type="secondary">{t('login.changeHint')}</Typography.Paragraph>}
        <ChangePasswordForm />
      </Card>
    </Centered>
  );
}
