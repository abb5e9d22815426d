import { useState } from 'react';
import { App, Button, Input, Modal, Popconfirm, Space, Switch, Table, Tag, Typography } from 'antd';
import { HistoryOutlined, PlusOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import { useAll, useList, useResourceMutations } from '../api/hooks';
import type { Model, Provider, ProviderKey } from '../api/types';
import { useSession } from '../auth/session';
import { canRead, canWrite } from '../auth/permissions';
import { ErrorAlert, useErrorReporter } from '../components/errors';
import { ModelForm } from '../components/ModelForm';
import { PageCard } from '../components/PageCard';
import { PriceHistoryDrawer } from '../components/Rerate';

export function ModelsPage() {
  const { t } = useTranslation();
  const { user } = useSession();
  const { message } = App.useApp();
  const report = useErrorReporter();
  const writable = canWrite(user?.role, 'model');
  const readable = canRead(user?.role, 'model');
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const [search, setSearch] = useState('');
  const list = useList<Model>('/models', { q: search, limit: page.pageSize, offset: (page.current - 1) * page.pageSize });
  const providers = useAll<Provider>('/providers', canRead(user?.role, 'provider'));
  const keys = useAll<ProviderKey>('/provider-keys', writable);
  const { create, update, remove } = useResourceMutations<Model>('/models');
  const [editing, setEditing] = useState<Model | 'new' | null>(null);
  const [pricesOf, setPricesOf] = useState<Model | null>(null);
  const providerName = (id: string) => providers.data?.find((provider) => provider.id === id)?.name ?? id;

  return (
    <PageCard
      title={t('models.title')}
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
              {t('models.new')}
            </Button>
          )}
        </>
      }
    >
      <ErrorAlert error={list.error} />
      <Table<Model>
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
            title: t('models.alias'),
            dataIndex: 'alias',
            render: (alias: string) => (
              <Typography.Text strong code>
                {alias}
              </Typography.Text>
            ),
          },
          {
            title: t('models.routes'),
            dataIndex: 'routes',
            render: (routes: Model['routes']) => (
              <Space direction="vertical" size={0}>
                {routes.map((route, index) => (
                  <span key={index}>
                    <Tag>P{route.priority}</Tag>
                    {providerName(route.provider_id)} → <Typography.Text code>{route.upstream_model}</Typography.Text> ×{route.weight}
                  </span>
                ))}
              </Space>
            ),
          },
          {
            title: t('models.price'),
            dataIndex: 'price',
            render: (price: Model['price']) =>
              price ? (
                `${price.input_per_million} / ${price.output_per_million} ${price.currency}`
              ) : (
                <Typography.Text type="secondary">{t('models.noPrice')}</Typography.Text>
              ),
          },
          {
            title: t('models.contextWindow'),
            dataIndex: 'context_window',
            render: (value?: number | null) => value?.toLocaleString() ?? '—',
          },
          {
            title: t('common.enabled'),
            dataIndex: 'enabled',
            render: (enabled: boolean, model) => (
              <Switch
                checked={enabled}
                disabled={!writable}
                aria-label={`enable-${model.alias}`}
                onChange={(checked) => update.mutate({ item: model, changes: { enabled: checked } }, { onError: (error) => report(error) })}
              />
            ),
          },
          ...(readable || writable
            ? [
                {
                  title: t('common.actions'),
                  key: 'actions',
                  render: (_: unknown, model: Model) => (
                    <Space>
                      {readable && (
                        <Button size="small" icon={<HistoryOutlined />} title={t('rerate.pricesHelp')} onClick={() => setPricesOf(model)}>
                          {t('rerate.prices')}
                        </Button>
                      )}
                      {writable && (
                        <Button size="small" onClick={() => setEditing(model)}>
                          {t('common.edit')}
                        </Button>
                      )}
                      {writable && (
                        <Popconfirm
                          title={t('common.confirmDelete', { name: model.alias })}
                          onConfirm={() =>
                            remove.mutateAsync(model).then(
                              () => message.success(t('common.deleted')),
                              (error) => report(error),
                            )
                          }
                        >
                          <Button size="small" danger>
                            {t('common.delete')}
                          </Button>
                        </Popconfirm>
                      )}
                    </Space>
                  ),
                },
              ]
            : []),
        ]}
      />
      <Modal
        open={editing !== null}
        title={editing === 'new' ? t('models.new') : t('common.edit')}
        footer={null}
        width={960}
        destroyOnClose
        onCancel={() => setEditing(null)}
      >
        {editing !== null && (
          <ModelForm
            model={editing === 'new' ? undefined : editing}
            providers={providers.data ?? []}
            keys={keys.data ?? []}
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
      <PriceHistoryDrawer model={pricesOf} onClose={() => setPricesOf(null)} />
    </PageCard>
  );
}
