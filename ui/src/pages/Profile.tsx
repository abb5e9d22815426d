import { Card, Col, Descriptions, Row, Space, Tag, Typography } from 'antd';
import { useTranslation } from 'react-i18next';
import { useSession } from '../auth/session';
import { ChangePasswordForm } from './Login';
import { LanguageSelect } from '../components/LanguageSelect';
import { formatTime } from '../format';

export function ProfilePage() {
  const { t } = useTranslation();
  const { user } = useSession();
  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} lg={12}>
        <Card title={t('profile.account')}>
          <Descriptions column={1} bordered size="small">
            <Descriptions.Item label={t('users.username')}>{user?.username}</Descriptions.Item>
            <Descriptions.Item label={t('users.displayName')}>{user?.display_name || '—'}</Descriptions.Item>
            <Descriptions.Item label={t('users.role')}>{user && <Tag>{t(`users.roles.${user.role}`)}</Tag>}</Descriptions.Item>
            <Descriptions.Item label={t('profile.session')}>{formatTime(user?.session_expires_at)}</Descriptions.Item>
          </Descriptions>
          <Space direction="vertical" style={{ marginTop: 24 }}>
            <Typography.Text strong>{t('app.language')}</Typography.Text>
            <LanguageSelect style={{ width: 200 }} />
            <Typography.Text type="secondary">{t('profile.languageHelp')}</Typography.Text>
          </Space>
        </Card>
      </Col>
      <Col xs={24} lg={12}>
        <Card title={t('profile.changePassword')}>
          {user?.sso ? <Typography.Text type="secondary">{t('profile.ssoPassword')}</Typography.Text> : <ChangePasswordForm />}
        </Card>
      </Col>
    </Row>
  );
}
