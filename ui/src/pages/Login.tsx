import { useState } from 'react';
import { App, Button, Card, Form, Input, Space, Typography } from 'antd';
import { LockOutlined, UserOutlined } from '@ant-design/icons';
import { useNavigate, useLocation } from 'react-router-dom';
import { useTranslation } from 'react-i18next';
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

export function LoginPage() {
  const { t } = useTranslation();
  const { login } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (values: { username: string; password: string }) => {
    setBusy(true);
    setError(null);
    try {
      await login(values.username, values.password);
      navigate((location.state as { from?: string } | null)?.from ?? '/', { replace: true });
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Centered>
      <Card title={t('login.title')} style={{ width: 380 }}>
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
