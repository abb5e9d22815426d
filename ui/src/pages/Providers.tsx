import { useState } from 'react';
import { App, Button, Input, Modal, Popconfirm, Space, Switch, Table, Tag, Typography } from 'antd';
import { PlusOutlined } from '@ant-design/icons';
import { Link } from 'react-router-dom';
import { useTranslation } from 'react-i18next';
import { useAll, useList, useResourceMutations } from '../api/hooks';
import type { Provider, ProviderKey, ProviderProtocol } from '../api/types';
import { useSession } from '../auth/session';
import { canWrite } from '../auth/permissions';
import { ErrorAlert, useErrorReporter } from '../components/errors';
import { healthOf } from '../components/health';
import { PageCard } from '../components/PageCard';
import { ProviderForm } from '../components/ProviderForm';

const PROTOCOL_COLORS: Record<ProviderProtocol, string> = {
  openai: 'geekblue',
  openai_responses: 'cyan',
  anthropic: 'purple',
  gemini: 'green',
};

export function ProvidersPage() {
  const { t } = useTranslation();
  const { user } = useSession();
  const { message } = App.useApp();
  const report = useErrorReporter();
  const writable = canWrite(user?.role, 'provider');
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const [search, setSearch] = useState('');
  const list = useList<Provider>('/providers', { q: search, limit: page.pageSize, offset: (page.current - 1) * page.pageSize });
  const keys = useAll<ProviderKey>('/provider-keys');
  const { create, update, remove } = useResourceMutations<Provider>('/providers');
  const [editing, setEditing] = useState<Provider | 'new' | null>(null);

  const keyStats = (providerId: string) => {
    const own = (keys.data ?? []).filter((key) => key.provider_id === providerId);
    return {
      total: own.length,
      healthy: own.filter((key) => key.enabled && healthOf(key) === 'healthy').length,
      failing: own.filter((key) => healthOf(key) === 'failing').length,
    };
  };

  return (
    <PageCard
      title={t('providers.title')}
      extra={
        <>
          <Input.Search
            allowClear
            placeholder={t('common.search')}
            onSearch={(value) => {
              setSearch(value);
              setPage({ ...page, current: 1 });
            }}
            style={{ width: 220 }}
          />
          {writable && (
            <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')}>
              {t('providers.new')}
            </Button>
          )}
        </>
      }
    >
      <ErrorAlert error={list.error} />
      <Table<Provider>
        rowKey="id"
        loading={list.isLoading}
        dataSource={list.data?.items}
        pagination={{
          ...page,
          total: list.data?.total,
          showTotal: (count) => t('common.total', { count }),
          onChange: (current, pageSize) => setPage({ current, pageSize }),
        }}
        columns={[
          {
            title: t('common.name'),
            dataIndex: 'name',
            render: (name: string, provider) => (
              <Space direction="vertical" size={0}>
                <Typography.Text strong>{name}</Typography.Text>
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  {provider.id}
                </Typography.Text>
              </Space>
            ),
          },
          {
            title: t('providers.protocol'),
            dataIndex: 'protocol',
            render: (protocol: ProviderProtocol) => <Tag color={PROTOCOL_COLORS[protocol]}>{protocol}</Tag>,
          },
          { title: t('providers.baseUrl'), dataIndex: 'base_url', render: (url: string) => <Typography.Text code>{url}</Typography.Text> },
          {
            title: t('providers.keys'),
            key: 'keys',
            render: (_, provider) => {
              const stats = keyStats(provider.id);
              if (stats.total === 0) return <Typography.Text type="secondary">{t('providers.noKeys')}</Typography.Text>;
              return (
                <Link to={`/keys?provider_id=${encodeURIComponent(provider.id)}`}>
                  <Space>
                    <span>{stats.total}</span>
                    <Tag color={stats.failing > 0 ? 'red' : stats.healthy > 0 ? 'green' : 'default'}>{t('providers.healthyOf', stats)}</Tag>
                  </Space>
                </Link>
              );
            },
          },
          {
            title: t('common.enabled'),
            dataIndex: 'enabled',
            render: (enabled: boolean, provider) => (
              <Switch
                checked={enabled}
                disabled={!writable}
                loading={update.isPending && update.variables?.item.id === provider.id}
                aria-label={`enable-${provider.name}`}
                onChange={(checked) =>
                  update.mutate({ item: provider, changes: { enabled: checked } }, { onError: (error) => report(error) })
                }
              />
            ),
          },
          ...(writable
            ? [
                {
                  title: t('common.actions'),
                  key: 'actions',
                  render: (_: unknown, provider: Provider) => (
                    <Space>
                      <Button size="small" onClick={() => setEditing(provider)}>
                        {t('common.edit')}
                      </Button>
                      <Popconfirm
                        title={t('common.confirmDelete', { name: provider.name })}
                        onConfirm={() =>
                          remove.mutateAsync(provider).then(
                            () => message.success(t('common.deleted')),
                            (error) => report(error),
                          )
                        }
                      >
                        <Button size="small" danger>
                          {t('common.delete')}
                        </Button>
                      </Popconfirm>
                    </Space>
                  ),
                },
              ]
            : []),
        ]}
      />
      <Modal
        open={editing !== null}
        title={editing === 'new' ? t('providers.new') : t('common.edit')}
        footer={null}
        width={720}
        destroyOnClose
        onCancel={() => setEditing(null)}
      >
        {editing !== null && (
          <ProviderForm
            provider={editing === 'new' ? undefined : editing}
            keys={editing === 'new' ? [] : (keys.data ?? []).filter((key) => key.provider_id === editing.id)}
            reenterSecrets={user?.role !== 'admin'}
            onCancel={() => setEditing(null)}
            onSubmit={async (body) => {
              if (editing === 'new') await create.mutateAsync(body);
              else await update.mutateAsync({ item: editing, changes: body });
              void message.success(t('common.saved'));
              setEditing(null);
            }}
          />
        )}
      </Modal>
    </PageCard>
  );
}
