import { Suspense } from 'react';
import { Button, Dropdown, Layout, Menu, Space, Spin, Tag, Typography } from 'antd';
import {
  ApartmentOutlined,
  ApiOutlined,
  AuditOutlined,
  BarChartOutlined,
  CloudServerOutlined,
  ControlOutlined,
  DashboardOutlined,
  KeyOutlined,
  LogoutOutlined,
  RocketOutlined,
  SafetyCertificateOutlined,
  TeamOutlined,
  UserOutlined,
} from '@ant-design/icons';
import { Outlet, useLocation, useNavigate } from 'react-router-dom';
import { useTranslation } from 'react-i18next';
import { useSession } from '../auth/session';
import { canRead } from '../auth/permissions';
import { LanguageSelect } from './LanguageSelect';

export function AppLayout() {
  const { t } = useTranslation();
  const { user, logout } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const role = user?.role;
  const items = [
    { key: '/', icon: <RocketOutlined />, label: t('nav.getStarted') },
    { key: '/dashboard', icon: <DashboardOutlined />, label: t('nav.dashboard') },
    canRead(role, 'provider') && { key: '/providers', icon: <CloudServerOutlined />, label: t('nav.providers') },
    canRead(role, 'provider_key') && { key: '/keys', icon: <KeyOutlined />, label: t('nav.keys') },
    canRead(role, 'model') && { key: '/models', icon: <ApiOutlined />, label: t('nav.models') },
    { key: '/tokens', icon: <SafetyCertificateOutlined />, label: t('nav.tokens') },
    // Not TeamOutlined (Users and roles has it): its aria-label "team" would also match a /team/i locator.
    canRead(role, 'team') && { key: '/teams', icon: <ApartmentOutlined />, label: t('nav.teams') },
    canRead(role, 'setting') && { key: '/limits', icon: <ControlOutlined />, label: t('nav.limits') },
    { key: '/usage', icon: <BarChartOutlined />, label: t('nav.usage') },
    canRead(role, 'audit') && { key: '/audit', icon: <AuditOutlined />, label: t('nav.audit') },
    role === 'admin' && { key: '/users', icon: <TeamOutlined />, label: t('nav.users') },
  ].filter(Boolean) as { key: string; icon: JSX.Element; label: string }[];
  const selected =
    items.map((item) => item.key).filter((key) => key !== '/' && location.pathname.startsWith(key))[0] ??
    (location.pathname === '/' ? '/' : '');

  return (
    <Layout style={{ minHeight: '100vh' }}>
      <Layout.Sider breakpoint="lg" collapsedWidth={0} width={220} theme="dark">
        <div style={{ color: '#fff', fontSize: 20, fontWeight: 600, padding: '16px 24px' }}>AxonGate</div>
        <Menu theme="dark" mode="inline" selectedKeys={[selected]} items={items} onClick={({ key }) => navigate(key)} />
      </Layout.Sider>
      <Layout>
        <Layout.Header
          style={{ background: '#fff', padding: '0 24px', display: 'flex', justifyContent: 'flex-end', alignItems: 'center', gap: 16 }}
        >
          <LanguageSelect />
          <Dropdown
            menu={{
              items: [
                { key: 'profile', icon: <UserOutlined />, label: t('nav.profile'), onClick: () => navigate('/profile') },
                { key: 'logout', icon: <LogoutOutlined />, label: t('app.signOut'), onClick: () => void logout() },
              ],
            }}
          >
            <Button type="text" data-testid="user-menu">
              <Space>
                <UserOutlined />
                {user?.display_name || user?.username}
                <Tag>{role ? t(`users.roles.${role}`) : ''}</Tag>
              </Space>
            </Button>
          </Dropdown>
        </Layout.Header>
        <Layout.Content style={{ margin: 24 }}>
          <Suspense fallback={<Spin style={{ display: 'block', marginTop: 80 }} />}>
            <Outlet />
          </Suspense>
        </Layout.Content>
        <Layout.Footer style={{ textAlign: 'center', padding: 12 }}>
          <Typography.Text type="secondary">AxonGate</Typography.Text>
        </Layout.Footer>
      </Layout>
    </Layout>
  );
}
