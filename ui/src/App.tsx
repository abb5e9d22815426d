import { Spin } from 'antd';
import { Navigate, Route, Routes, useLocation } from 'react-router-dom';
import { useSession } from './auth/session';
import { canRead } from './auth/permissions';
import { AppLayout } from './components/AppLayout';
import { LoginPage, ChangePasswordPage } from './pages/Login';
import { DashboardPage } from './pages/Dashboard';
import { ProvidersPage } from './pages/Providers';
import { KeysPage } from './pages/Keys';
import { ModelsPage } from './pages/Models';
import { TokensPage } from './pages/Tokens';
import { UsagePage } from './pages/Usage';
import { AuditPage } from './pages/Audit';
import { UsersPage } from './pages/Users';
import { ProfilePage } from './pages/Profile';

export function App() {
  const { user } = useSession();
  const location = useLocation();
  if (user === undefined) {
    return <Spin size="large" style={{ display: 'block', marginTop: '30vh' }} />;
  }
  if (user === null) {
    return (
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="*" element={<Navigate to="/login" replace state={{ from: location.pathname }} />} />
      </Routes>
    );
  }
  if (user.must_change_password) {
    return <ChangePasswordPage forced />;
  }
  const role = user.role;
  return (
    <Routes>
      <Route path="/login" element={<Navigate to="/" replace />} />
      <Route element={<AppLayout />}>
        <Route index element={<DashboardPage />} />
        {canRead(role, 'provider') && <Route path="providers" element={<ProvidersPage />} />}
        {canRead(role, 'provider_key') && <Route path="keys" element={<KeysPage />} />}
        {canRead(role, 'model') && <Route path="models" element={<ModelsPage />} />}
        <Route path="tokens" element={<TokensPage />} />
        <Route path="usage" element={<UsagePage />} />
        {canRead(role, 'audit') && <Route path="audit" element={<AuditPage />} />}
        {role === 'admin' && <Route path="users" element={<UsersPage />} />}
        <Route path="profile" element={<ProfilePage />} />
        <Route path="*" element={<Navigate to="/" replace />} />
      </Route>
    </Routes>
  );
}
