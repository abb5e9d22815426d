import { useState } from 'react';
import { Button, Card, Input, Select, Space, Table, Tag, Tooltip, Typography } from 'antd';
import { useQuery, keepPreviousData } from '@tanstack/react-query';
import type { Dayjs } from 'dayjs';
import { useTranslation } from 'react-i18next';
import { get } from '../api/client';
import type { AuditEntry, ChainVerification, Page } from '../api/types';
import { ErrorAlert } from '../components/errors';
import { RangeControls } from '../components/RangeControls';
import { rangeFor, type RangeKey } from '../components/range';
import { diff, show, type FieldChange } from '../components/diff';
import { formatTime } from '../format';

const ENTITIES = ['provider', 'provider_key', 'model', 'token', 'user', 'role_binding', 'setting', 'session'];

export function AuditDiff({ entry }: { entry: AuditEntry }) {
  const { t } = useTranslation();
  const changes = diff(entry.before, entry.after);
  if (changes.length === 0) return <Typography.Text type="secondary">{t('audit.noChanges')}</Typography.Text>;
  return (
    <Table
      size="small"
      pagination={false}
      rowKey="path"
      dataSource={changes}
      columns={[
        { title: t('audit.field'), dataIndex: 'path', render: (path: string) => <Typography.Text code>{path}</Typography.Text> },
        {
          title: t('audit.before'),
          dataIndex: 'before',
          render: (value: unknown, change: FieldChange) =>
            value === undefined ? (
              ''
            ) : (
              <span style={{ background: '#fff1f0', color: '#a8071a', padding: '0 4px', wordBreak: 'break-all' }}>
                {show(value, change.path)}
              </span>
            ),
        },
        {
          title: t('audit.after'),
          dataIndex: 'after',
          render: (value: unknown, change: FieldChange) =>
            value === undefined ? (
              ''
            ) : (
              <span style={{ background: '#f6ffed', color: '#237804', padding: '0 4px', wordBreak: 'break-all' }}>
                {show(value, change.path)}
              </span>
            ),
        },
      ]}
    />
  );
}

/** The tamper-evidence badge: the result of walking the config and audit streams' chain. */
export function ChainBadge() {
  const { t } = useTranslation();
  const check = useQuery({
    queryKey: ['/audit/verify'],
    queryFn: () => get<ChainVerification>('/audit/verify'),
    staleTime: 60_000,
  });
  const broken = check.data?.streams.find((stream) => stream.first_broken);
  const events = check.data?.streams.reduce((sum, stream) => sum + stream.events, 0) ?? 0;
  const tag = check.isPending ? (
    <Tag>{t('audit.chainChecking')}</Tag>
  ) : check.error || !check.data ? (
    <Tag color="orange">{t('audit.chainUnreadable')}</Tag>
  ) : broken?.first_broken ? (
    <Tag color="red" data-testid="chain-broken">
      {t('audit.chainBroken', { stream: broken.stream, seq: broken.first_broken.seq, reason: broken.first_broken.reason })}
    </Tag>
  ) : (
    <Tag color="green" data-testid="chain-whole">
      {t('audit.chainWhole', { count: events })}
    </Tag>
  );
  return (
    <Space size="small">
      <Tooltip title={broken?.first_broken?.detail ?? t('audit.chainHelp')}>{tag}</Tooltip>
      <Button size="small" loading={check.isFetching} onClick={() => void check.refetch()}>
        {t('audit.verifyAgain')}
      </Button>
    </Space>
  );
}

export function AuditPage() {
  const { t } = useTranslation();
  const [filters, setFilters] = useState<{ entity?: string; entity_id?: string; actor?: string; type?: string }>({});
  const [preset, setPreset] = useState<RangeKey | null>(null);
  const [custom, setCustom] = useState<[Dayjs, Dayjs] | null>(null);
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const range = preset ? rangeFor(preset) : custom;
  const query = {
    ...filters,
    from: range?.[0].toISOString(),
    to: range?.[1].toISOString(),
    limit: page.pageSize,
    offset: (page.current - 1) * page.pageSize,
  };
  const list = useQuery({
    queryKey: ['/audit', query],
    queryFn: () => get<Page<AuditEntry>>('/audit', query),
    placeholderData: keepPreviousData,
  });
  const set = (patch: typeof filters) => {
    setFilters({ ...filters, ...patch });
    setPage({ ...page, current: 1 });
  };

  return (
    <Card title={<h2 style={{ margin: 0, fontSize: 18 }}>{t('audit.title')}</h2>} extra={<ChainBadge />}>
      <Space wrap style={{ marginBottom: 16 }}>
        <Select
          allowClear
          placeholder={t('audit.entity')}
          style={{ width: 160 }}
          value={filters.entity}
          onChange={(entity) => set({ entity })}
          options={ENTITIES.map((entity) => ({ value: entity, label: entity }))}
        />
        <Input.Search
          allowClear
          placeholder={t('audit.entityId')}
          style={{ width: 180 }}
          onSearch={(value) => set({ entity_id: value || undefined })}
        />
        <Input.Search
          allowClear
          placeholder={t('audit.actor')}
          style={{ width: 160 }}
          onSearch={(value) => set({ actor: value || undefined })}
        />
        <Input.Search
          allowClear
          placeholder={t('audit.type')}
          style={{ width: 200 }}
          onSearch={(value) => set({ type: value || undefined })}
        />
        <RangeControls
          preset={preset}
          custom={custom}
          onPreset={(key) => {
            setPreset(key);
            setCustom(null);
          }}
          onCustom={(value) => {
            setCustom(value);
            setPreset(null);
          }}
        />
        {(preset || custom) && (
          <Button
            onClick={() => {
              setPreset(null);
              setCustom(null);
            }}
          >
            {t('common.all')}
          </Button>
        )}
      </Space>
      <ErrorAlert error={list.error} />
      <Table<AuditEntry>
        rowKey={(entry) => `${entry.stream}-${entry.sequence}`}
        size="small"
        loading={list.isFetching}
        dataSource={list.data?.items}
        expandable={{
          expandedRowRender: (entry) => <AuditDiff entry={entry} />,
          rowExpandable: (entry) => entry.before != null || entry.after != null,
        }}
        pagination={{
          ...page,
          total: list.data?.total,
          showTotal: (count) => t('common.total', { count }),
          onChange: (current, pageSize) => setPage({ current, pageSize }),
        }}
        columns={[
          { title: t('audit.time'), dataIndex: 'occurred_at', render: formatTime, width: 170 },
          {
            title: t('audit.type'),
            dataIndex: 'type',
            render: (type: string) => (
              <Tag color={type.includes('deleted') || type.includes('failed') ? 'red' : type.includes('put') ? 'blue' : 'default'}>
                {type}
              </Tag>
            ),
          },
          { title: t('audit.actor'), dataIndex: 'actor', render: (actor: string | null, entry) => actor ?? entry.actor_id ?? '—' },
          { title: t('audit.entity'), dataIndex: 'entity', render: (entity: string | null) => entity ?? '—' },
          {
            title: t('audit.entityId'),
            dataIndex: 'entity_id',
            render: (id: string | null) => (id ? <Typography.Text code>{id}</Typography.Text> : '—'),
          },
          {
            title: t('audit.changes'),
            key: 'changes',
            render: (_, entry) => (entry.before != null || entry.after != null ? diff(entry.before, entry.after).length : '—'),
          },
        ]}
      />
    </Card>
  );
}
