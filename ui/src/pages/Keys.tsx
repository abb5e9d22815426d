import { useState } from 'react';
import { App, Button, Modal, Popconfirm, Select, Space, Switch, Table, Typography } from 'antd';
import { ExperimentOutlined, PlusOutlined } from '@ant-design/icons';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useSearchParams } from 'react-router-dom';
import { useTranslation } from 'react-i18next';
import { post } from '../api/client';
import { useAll, useList, useResourceMutations } from '../api/hooks';
import type { KeyTestResult, Provider, ProviderKey } from '../api/types';
import { useSession } from '../auth/session';
import { canWrite } from '../auth/permissions';
import { ErrorAlert, errorText, useErrorReporter } from '../components/errors';
import { HealthTag } from '../components/health';
import { KeyForm } from '../components/KeyForm';
import { PageCard } from '../components/PageCard';
import { formatMs, formatTime } from '../format';

export function KeysPage() {
  const { t } = useTranslation();
  const { user } = useSession();
  const { message, modal } = App.useApp();
  const report = useErrorReporter();
  const queryClient = useQueryClient();
  const writable = canWrite(user?.role, 'provider_key');
  const [params, setParams] = useSearchParams();
  const providerFilter = params.get('provider_id') ?? undefined;
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const providers = useAll<Provider>('/providers');
  const list = useList<ProviderKey>('/provider-keys', {
    provider_id: providerFilter,
    limit: page.pageSize,
    offset: (page.current - 1) * page.pageSize,
  });
  const { create, update, remove } = useResourceMutations<ProviderKey>('/provider-keys');
  const [editing, setEditing] = useState<ProviderKey | 'new' | null>(null);
  const providerName = (id: string) => providers.data?.find((provider) => provider.id === id)?.name ?? id;

  const test = useMutation({
    mutationFn: (key: ProviderKey) => post<KeyTestResult>(`/provider-keys/${encodeURIComponent(key.id)}/test`, {}),
    onSuccess: (result) => {
      void queryClient.invalidateQueries({ queryKey: ['/provider-keys'] });
      if (result.ok) {
        modal.success({
          title: t('keys.test'),
          content: <span data-testid="key-test-result">{t('keys.testOk', { status: result.status, latency: result.latency_ms })}</span>,
        });
      } else {
        modal.error({
          title: t('keys.test'),
          content: <span data-testid="key-test-result">{t('keys.testFailed', { error: result.error ?? `HTTP ${result.status}` })}</span>,
        });
      }
    },
    onError: (error) => modal.error({ title: t('keys.test'), content: errorText(error) }),
  });

  return (
    <PageCard
      title={t('keys.title')}
      extra={
        <>
          <Select
            allowClear
            placeholder={t('keys.provider')}
            style={{ width: 200 }}
            value={providerFilter}
            options={(providers.data ?? []).map((provider) => ({ value: provider.id, label: provider.name }))}
            onChange={(value) => {
              setParams(value ? { provider_id: value } : {});
              setPage({ ...page, current: 1 });
            }}
          />
          {writable && (
            <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')}>
              {t('keys.new')}
            </Button>
          )}
        </>
      }
    >
      <ErrorAlert error={list.error} />
      <Table<ProviderKey>
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
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('keys.provider'), dataIndex: 'provider_id', render: providerName },
          {
            title: t('keys.masked'),
            dataIndex: 'last_four',
            render: (lastFour: string) => (
              <Typography.Text code data-testid="masked-key">
                ••••{lastFour}
              </Typography.Text>
            ),
          },
          { title: t('keys.health'), key: 'health', render: (_, key) => <HealthTag keyItem={key} /> },
          {
            title: t('keys.lastStatus'),
            key: 'status',
            render: (_, key) => (key.health?.last_status ? `${key.health.last_status} · ${formatMs(key.health.last_latency_ms)}` : '—'),
          },
          {
            title: t('keys.lastError'),
            key: 'error',
            render: (_, key) =>
              key.health?.last_error ? (
                <Space direction="vertical" size={0}>
                  <Typography.Text type="danger">{key.health.last_error}</Typography.Text>
                  <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                    {formatTime(key.health.last_error_at)}
                  </Typography.Text>
                </Space>
              ) : (
                '—'
              ),
          },
          {
            title: t('common.enabled'),
            dataIndex: 'enabled',
            render: (enabled: boolean, key) => (
              <Switch
                checked={enabled}
                disabled={!writable}
                aria-label={`enable-${key.name}`}
                onChange={(checked) => update.mutate({ item: key, changes: { enabled: checked } }, { onError: (error) => report(error) })}
              />
            ),
          },
          ...(writable
            ? [
                {
                  title: t('common.actions'),
                  key: 'actions',
                  render: (_: unknown, key: ProviderKey) => (
                    <Space>
                      <Button
                        size="small"
                        icon={<ExperimentOutlined />}
                        loading={test.isPending && test.variables?.id === key.id}
                        onClick={() => test.mutate(key)}
                      >
                        {t('keys.test')}
                      </Button>
                      <Button size="small" onClick={() => setEditing(key)}>
                        {t('common.edit')}
                      </Button>
                      <Popconfirm
                        title={t('common.confirmDelete', { name: key.name })}
                        onConfirm={() =>
                          remove.mutateAsync(key).then(
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
        title={editing === 'new' ? t('keys.new') : t('common.edit')}
        footer={null}
        destroyOnClose
        onCancel={() => setEditing(null)}
      >
        {editing !== null && (
          <KeyForm
            keyItem={editing === 'new' ? undefined : editing}
            providers={providers.data ?? []}
            defaultProviderId={providerFilter}
            onCancel={() => setEditing(null)}
            onSubmit={async (body) => {
              if (editing === 'new') await create.mutateAsync(body);
              else
                await update.mutateAsync({
                  item: editing,
                  changes: { name: body.name, enabled: body.enabled, ...(body.secret ? { secret: body.secret } : {}) },
                });
              void message.success(t('common.saved'));
              setEditing(null);
            }}
          />
        )}
      </Modal>
    </PageCard>
  );
}
