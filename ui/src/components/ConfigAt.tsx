import { Alert, Descriptions, Drawer, Space, Table, Tag, Typography } from 'antd';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { get } from '../api/client';
import type { ConfigAt, Model, Token } from '../api/types';
import { ErrorAlert } from './errors';
import { formatTime } from '../format';

/**
 * The config a request was served under: `GET /config/at?seq=N`, rebuilt from the config
 * stream — the models' routes and prices, the tokens' limits and budgets, the providers.
 */
export function ConfigAtDrawer({ seq, onClose }: { seq: number | null; onClose: () => void }) {
  const { t } = useTranslation();
  const config = useQuery({
    queryKey: ['/config/at', seq],
    queryFn: () => get<ConfigAt>('/config/at', { seq: seq ?? undefined }),
    enabled: seq != null,
    staleTime: Infinity,
  });
  const data = config.data;
  return (
    <Drawer open={seq != null} onClose={onClose} width={900} title={t('configAt.title', { seq })} destroyOnHidden data-testid="config-at">
      <ErrorAlert error={config.error} />
      {data && (
        <Space direction="vertical" style={{ width: '100%' }} size="large">
          {data.event && (
            <Descriptions size="small" column={2} bordered>
              <Descriptions.Item label={t('configAt.event')}>
                <Tag>{data.event.type}</Tag> <Typography.Text code>{data.event.entity_id}</Typography.Text>
              </Descriptions.Item>
              <Descriptions.Item label={t('configAt.when')}>
                {formatTime(data.event.occurred_at)} · {data.event.actor ?? '—'}
              </Descriptions.Item>
            </Descriptions>
          )}
          {data.last_seq > data.seq && <Alert type="info" showIcon message={t('configAt.later', { count: data.last_seq - data.seq })} />}
          <Typography.Title level={5}>{t('configAt.models')}</Typography.Title>
          <Table<Model>
            size="small"
            rowKey="id"
            pagination={false}
            dataSource={data.entities.model}
            columns={[
              { title: t('models.alias'), dataIndex: 'alias', render: (alias: string) => <Typography.Text code>{alias}</Typography.Text> },
              {
                title: t('models.routes'),
                key: 'routes',
                render: (_, model) =>
                  model.routes.map((route, index) => (
                    <div key={index}>
                      {route.provider_id} → <Typography.Text code>{route.upstream_model}</Typography.Text>
                      {` (${t('configAt.priority')} ${route.priority}, ${t('configAt.weight')} ${route.weight})`}
                    </div>
                  )),
              },
              {
                title: t('models.price'),
                key: 'price',
                render: (_, model) =>
                  model.price
                    ? `${model.price.input_per_million} / ${model.price.output_per_million} ${model.price.currency} (v${model.price.version ?? 1})`
                    : '—',
              },
              { title: t('configAt.version'), dataIndex: 'version', align: 'right' },
            ]}
          />
          <Typography.Title level={5}>{t('configAt.tokens')}</Typography.Title>
          <Table<Token>
            size="small"
            rowKey="id"
            pagination={false}
            dataSource={data.entities.token}
            columns={[
              { title: t('common.name'), dataIndex: 'name' },
              { title: t('tokens.rpm'), dataIndex: 'rpm', align: 'right', render: (value?: number | null) => value ?? '—' },
              { title: t('tokens.tpm'), dataIndex: 'tpm', align: 'right', render: (value?: number | null) => value ?? '—' },
              {
                title: t('tokens.budget'),
                key: 'budget',
                render: (_, token) => (token.budget ? `${token.budget.amount} ${token.budget.currency} / ${token.budget.period}` : '—'),
              },
              {
                title: t('common.enabled'),
                dataIndex: 'enabled',
                render: (enabled: boolean) => (enabled ? t('common.yes') : t('common.no')),
              },
            ]}
          />
          <Typography.Title level={5}>{t('configAt.providers')}</Typography.Title>
          <Table
            size="small"
            rowKey="id"
            pagination={false}
            dataSource={data.entities.provider}
            columns={[
              { title: t('common.id'), dataIndex: 'id' },
              { title: t('configAt.protocol'), dataIndex: 'protocol' },
              { title: 'URL', dataIndex: 'base_url' },
              {
                title: t('common.enabled'),
                dataIndex: 'enabled',
                render: (enabled: boolean) => (enabled ? t('common.yes') : t('common.no')),
              },
            ]}
          />
        </Space>
      )}
    </Drawer>
  );
}
