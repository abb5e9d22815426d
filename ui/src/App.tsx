import { lazy } from 'react';
import { Spin } from 'antd';
import { Navigate, Route, Routes, useLocation } from 'react-router-dom';
import { useSession } from './auth/session';
import { canRead } from './auth/permissions';
import { AppLayout } from './components/AppLayout';
import { LoginPage, ChangePasswordPage } from './pages/Login';
// Pages load on demand so that the login page does not wait for the charts and tables.
const GetStartedPage = lazy(() => import('./pages/GetStarted').then((module) => ({ default: module.GetStartedPage })));
const DashboardPage = lazy(() => import('./pages/Dashboard').then((module) => ({ default: module.DashboardPage })));
const ProvidersPage = lazy(() => import('./pages/Providers').then((module) => ({ default: module.ProvidersPage })));
const KeysPage = lazy(() => import('./pages/Keys').then((module) => ({ default: module.KeysPage })));
const ModelsPage = lazy(() => import('./pages/Models').then((module) => ({ default: module.ModelsPage })));
const TokensPage = lazy(() => import('./pages/Tokens').then((module) => ({ default: module.TokensPage })));
const TeamsPage = lazy(() => import('./pages/Teams').then((module) => ({ default: module.TeamsPage })));
const LimitsPage = lazy(() => import('./pages/Limits').then((module) => ({ default: module.LimitsPage })));
const UsagePage = lazy(() => import('./pages/Usage').then((module) => ({ default: module.UsagePage })));
const AuditPage = lazy(() => import('./pages/Audit').then((module) => ({ default: module.AuditPage })));
const UsersPage = lazy(() => import('./pages/Users').then((module) => ({ default: module.UsersPage })));
const ProfilePage = lazy(() => import('./pages/Profile').then((module) => ({ default: module.ProfilePage })));

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
        <Route index element={<GetStartedPage />} />
        <Route path="dashboard" element={<DashboardPage />} />
        {canRead(role, 'provider') && <Route path="providers" element={<ProvidersPage />} />}
        {canRead(role, 'provider_key') && <Route path="keys" element={<KeysPage />} />}
        {canRead(role, 'model') && <Route path="models" element={<ModelsPage />} />}
        <Route path="tokens" element={<TokensPage />} />
        {canRead(role, 'team') && <Route path="teams" element={<TeamsPage />} />}
        {canRead(role, 'setting') && <Route path="limits" element={<LimitsPage />} />}
        <Route path="usage" element={<UsagePage />} />
        {canRead(role, 'audit') && <Route path="audit" element={<AuditPage />} />}
        {role === 'admin' && <Route path="users" element={<UsersPage />} />}
        <Route path="profile" element={<ProfilePage />} />
        <Route path="*" element={<Navigate to="/" replace />} />
      </Route>
    </Routes>
  );
}
