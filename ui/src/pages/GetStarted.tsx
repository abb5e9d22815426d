// The landing page: paste-ready snippets (curl, the OpenAI, Anthropic and Gen AI SDKs, Claude Code,
// Codex) for a model and a token the user picks, the same ones `compose/local start` prints for
// the demo (keep both in step with docs/clients.md). The token lives in this component's state
// only: never stored, never sent anywhere.
import { useState } from 'react';
import { Alert, Card, Col, Form, Input, Row, Select, Space, Typography } from 'antd';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { useAll } from '../api/hooks';
import type { Model } from '../api/types';
import { useSession } from '../auth/session';
import { canRead } from '../auth/permissions';
import { ErrorAlert } from '../components/errors';
import { PageCard } from '../components/PageCard';
import { MODEL_PLACEHOLDER, TOKEN_PLACEHOLDER, defaultGatewayUrl, rememberGatewayUrl, snippets } from '../components/snippets';

export function GetStartedPage() {
  const { t } = useTranslation();
  const { user } = useSession();
  const modelsReadable = canRead(user?.role, 'model');
  const models = useAll<Model>('/models', modelsReadable);
  // The ingress address the token modal remembers, else the UI's host on ingress's port (8080,
  // as in compose/local and docs/deployment.md). Not a secret, so it is remembered; the token is not.
  const [baseUrl, setBaseUrl] = useState(defaultGatewayUrl);
  const [token, setToken] = useState('');
  const [picked, setPicked] = useState<string | undefined>(undefined);
  const firstEnabled = models.data?.find((model) => model.enabled)?.alias;
  const model = picked ?? firstEnabled ?? '';

  const shown = snippets(baseUrl.trim() || 'http://localhost:8080', token.trim() || TOKEN_PLACEHOLDER, model.trim() || MODEL_PLACEHOLDER);

  return (
    <PageCard title={t('getStarted.title')}>
      <Space direction="vertical" size="middle" style={{ width: '100%' }}>
        <Typography.Paragraph style={{ margin: 0 }}>{t('getStarted.intro')}</Typography.Paragraph>
        <ErrorAlert error={models.error} />
        {modelsReadable && models.data && models.data.length === 0 && (
          <Alert type="info" showIcon message={t('getStarted.noModels')} action={<Link to="/models">{t('nav.models')}</Link>} />
        )}
        <Form layout="vertical" component="div">
          <Row gutter={16}>
            <Col xs={24} lg={8}>
              <Form.Item label={t('getStarted.model')} htmlFor="get-started-model" extra={t('getStarted.modelHelp')}>
                {modelsReadable ? (
                  <Select
                    id="get-started-model"
                    showSearch
                    loading={models.isLoading}
                    value={model || undefined}
                    placeholder={t('getStarted.modelPlaceholder')}
                    onChange={(value: string) => setPicked(value)}
                    options={(models.data ?? []).map((item) => ({
                      value: item.alias,
                      label: item.enabled ? item.alias : `${item.alias} (${t('common.disabled')})`,
                    }))}
                  />
                ) : (
                  <Input
                    id="get-started-model"
                    value={picked ?? ''}
                    placeholder={t('getStarted.modelPlaceholder')}
                    onChange={(event) => setPicked(event.target.value)}
                  />
                )}
              </Form.Item>
            </Col>
            <Col xs={24} lg={8}>
              <Form.Item
                label={t('getStarted.token')}
                htmlFor="get-started-token"
                extra={
                  <>
                    {t('getStarted.tokenHelp')} <Link to="/tokens">{t('getStarted.createToken')}</Link>
                  </>
                }
              >
                <Input.Password
                  id="get-started-token"
                  value={token}
                  autoComplete="off"
                  placeholder={TOKEN_PLACEHOLDER}
                  onChange={(event) => setToken(event.target.value)}
                />
              </Form.Item>
            </Col>
            <Col xs={24} lg={8}>
              <Form.Item label={t('getStarted.baseUrl')} htmlFor="get-started-base-url" extra={t('getStarted.baseUrlHelp')}>
                <Input
                  id="get-started-base-url"
                  value={baseUrl}
                  placeholder="http://localhost:8080"
                  onChange={(event) => {
                    setBaseUrl(event.target.value);
                    rememberGatewayUrl(event.target.value);
                  }}
                />
              </Form.Item>
            </Col>
          </Row>
        </Form>
        {shown.map((snippet) => (
          <Card key={snippet.key} size="small" title={t(`getStarted.snippets.${snippet.key}`)}>
            <Typography.Paragraph copyable={{ text: snippet.text }} style={{ margin: 0 }}>
              <pre
                data-testid={`snippet-${snippet.key}`}
                data-language={snippet.language}
                style={{ margin: 0, whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}
              >
                {snippet.text}
              </pre>
            </Typography.Paragraph>
          </Card>
        ))}
      </Space>
    </PageCard>
  );
}
