import { useMemo, useState } from 'react';
import { App, Button, Modal, Popconfirm, Space, Switch, Table, Tag, Typography } from 'antd';
import { PlusOutlined } from '@ant-design/icons';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import dayjs from 'dayjs';
import { useTranslation } from 'react-i18next';
import { post } from '../api/client';
import { useBreakdown, useRequestLog } from '../api/analytics';
import { useAll, useList, useResourceMutations } from '../api/hooks';
import type { Model, Team, Token, User } from '../api/types';
import { useSession } from '../auth/session';
import { canRead, canWrite, isTeamAdmin, seesEveryone } from '../auth/permissions';
import { ErrorAlert, useErrorReporter } from '../components/errors';
import { PageCard } from '../components/PageCard';
import { SecretModal } from '../components/SecretModal';
import { TokenForm } from '../components/TokenForm';
import { formatMoney, formatNumber, formatTime } from '../format';

/** The latest request made with a token in the last 30 days, from the request log. */
function LastUsed({ tokenId }: { tokenId: string }) {
  const { t } = useTranslation();
  const range = useMemo(
    () => ({
      from: dayjs().subtract(30, 'day').startOf('minute').toISOString(),
      to: dayjs().add(1, 'minute').startOf('minute').toISOString(),
      token: tokenId,
    }),
    [tokenId],
  );
  const log = useRequestLog(range, 1, 0);
  if (log.isLoading) return <>…</>;
  if (log.error) return <Typography.Text type="secondary">—</Typography.Text>;
  const row = log.data?.rows[0];
  return <>{row ? formatTime(row.occurred_at) : t('common.never')}</>;
}

export function TokensPage() {
  const { t } = useTranslation();
  const { user } = useSession();
  const { message } = App.useApp();
  const report = useErrorReporter();
  const queryClient = useQueryClient();
  const role = user?.role;
  const writable = canWrite(role, 'token');
  const everyone = seesEveryone(role);
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const list = useList<Token>('/tokens', { limit: page.pageSize, offset: (page.current - 1) * page.pageSize });
  const users = useAll<User>('/users', canRead(role, 'user'));
  const models = useAll<Model>('/models', canRead(role, 'model'));
  const teams = useAll<Team>('/teams', canRead(role, 'team'));
  // A team admin manages the tokens charged to their team, whoever of its members owns them.
  const managedTeamIds = [
    ...new Set([
      ...(teams.data ?? []).filter((team) => isTeamAdmin(user, team)).map((team) => team.id),
      ...(user?.teams ?? []).filter((team) => team.role === 'admin').map((team) => team.id),
    ]),
  ];
  const showOwners = everyone || managedTeamIds.length > 0;
  const today = useMemo(
    () => ({ from: dayjs().startOf('day').toISOString(), to: dayjs().add(1, 'minute').startOf('minute').toISOString() }),
    [],
  );
  const perToken = useBreakdown(today, 'token', 100);
  const { create, update, remove } = useResourceMutations<Token>('/tokens');
  const [editing, setEditing] = useState<Token | 'new' | null>(null);
  const [revealed, setRevealed] = useState<Token | null>(null);

  const rotate = useMutation({
    mutationFn: (token: Token) => post<Token>(`/tokens/${encodeURIComponent(token.id)}/rotate`, { version: token.version }),
    onSuccess: (token) => {
      void queryClient.invalidateQueries({ queryKey: ['/tokens'] });
      setRevealed(token);
    },
    onError: (error) => report(error),
  });

  const usernameOf = (id: string) => {
    if (id === user?.id) return user.username;
    return users.data?.find((candidate) => candidate.id === id)?.username ?? id;
  };
  const teamName = (id: string) =>
    teams.data?.find((team) => team.id === id)?.name ?? user?.teams?.find((team) => team.id === id)?.name ?? id;
  const todayOf = (id: string) => perToken.data?.rows.find((row) => row.key === id);

  return (
    <PageCard
      title={t('tokens.title')}
      extra={
        writable && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')}>
            {t('tokens.new')}
          </Button>
        )
      }
    >
      <ErrorAlert error={list.error} />
      <Table<Token>
        rowKey="id"
        loading={list.isLoading}
        dataSource={list.data?.items}
        size="middle"
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
            render: (name: string, token) => (
              <Space direction="vertical" size={0}>
                <Typography.Text strong>{name}</Typography.Text>
                <Typography.Text code style={{ fontSize: 12, whiteSpace: 'nowrap' }}>
                  axg-…{token.last_four}
                </Typography.Text>
              </Space>
            ),
          },
          ...(showOwners ? [{ title: t('tokens.owner'), dataIndex: 'owner_user_id', render: usernameOf }] : []),
          {
            title: t('tokens.team'),
            dataIndex: 'team_id',
            render: (id?: string | null) => (id ? teamName(id) : <Typography.Text type="secondary">—</Typography.Text>),
          },
          {
            title: t('tokens.allowedModels'),
            dataIndex: 'allowed_models',
            render: (patterns: string[]) =>
              patterns.length ? (
                patterns.map((pattern) => <Tag key={pattern}>{pattern}</Tag>)
              ) : (
                <Typography.Text type="secondary">*</Typography.Text>
              ),
          },
          { title: t('tokens.limits'), key: 'limits', render: (_, token) => `${token.rpm ?? '∞'} / ${token.tpm ?? '∞'}` },
          {
            title: t('tokens.budget'),
            dataIndex: 'budget',
            render: (budget: Token['budget']) =>
              budget ? `${formatMoney(budget.amount, budget.currency)} ${t(`tokens.periods.${budget.period}`)}` : '—',
          },
          {
            title: t('tokens.expires'),
            dataIndex: 'expires_at',
            render: (at?: string | null) =>
              at ? (
                <Typography.Text type={dayjs(at).isBefore(dayjs()) ? 'danger' : undefined}>{formatTime(at)}</Typography.Text>
              ) : (
                t('common.never')
              ),
          },
          { title: t('tokens.lastUsed'), key: 'last_used', render: (_, token) => <LastUsed tokenId={token.id} /> },
          {
            title: t('tokens.requestsToday'),
            key: 'requests_today',
            render: (_, token) => (perToken.error ? '—' : formatNumber(todayOf(token.id)?.requests ?? 0)),
          },
          {
            title: t('tokens.spendToday'),
            key: 'spend_today',
            render: (_, token) => (perToken.error ? '—' : formatMoney(todayOf(token.id)?.cost ?? '0', token.budget?.currency)),
          },
          {
            title: t('common.enabled'),
            dataIndex: 'enabled',
            render: (enabled: boolean, token) => (
              <Switch
                checked={enabled}
                disabled={!writable}
                aria-label={`enable-${token.name}`}
                onChange={(checked) => update.mutate({ item: token, changes: { enabled: checked } }, { onError: (error) => report(error) })}
              />
            ),
          },
          ...(writable
            ? [
                {
                  title: t('common.actions'),
                  key: 'actions',
                  render: (_: unknown, token: Token) => (
                    <Space size={4} wrap style={{ maxWidth: 160 }}>
                      <Button size="small" onClick={() => setEditing(token)}>
                        {t('common.edit')}
                      </Button>
                      <Popconfirm
                        title={t('tokens.confirmRotate', { name: token.name })}
                        onConfirm={() => rotate.mutateAsync(token).catch(() => undefined)}
                      >
                        <Button size="small">{t('tokens.rotate')}</Button>
                      </Popconfirm>
                      <Popconfirm
                        title={t('tokens.confirmRevoke', { name: token.name })}
                        onConfirm={() =>
                          remove.mutateAsync(token).then(
                            () => message.success(t('tokens.revoked')),
                            (error) => report(error),
                          )
                        }
                      >
                        <Button size="small" danger>
                          {t('tokens.revoke')}
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
        title={editing === 'new' ? t('tokens.new') : t('common.edit')}
        footer={null}
        width={720}
        destroyOnClose
        onCancel={() => setEditing(null)}
      >
        {editing !== null && (
          <TokenForm
            token={editing === 'new' ? undefined : editing}
            users={canRead(role, 'user') && role !== 'viewer' ? (users.data ?? []) : undefined}
            teams={(teams.data?.length ?? 0) > 0 || (editing !== 'new' && editing.team_id) ? (teams.data ?? []) : undefined}
            managedTeamIds={managedTeamIds}
            modelAliases={(models.data ?? []).map((model) => model.alias)}
            onCancel={() => setEditing(null)}
            onSubmit={async (body) => {
              if (editing === 'new') {
                const created = await create.mutateAsync(body);
                setEditing(null);
                setRevealed(created);
              } else {
                await update.mutateAsync({ item: editing, changes: body });
                void message.success(t('common.saved'));
                setEditing(null);
              }
            }}
          />
        )}
      </Modal>
      <SecretModal
        secret={revealed?.secret ?? null}
        name={revealed?.name}
        model={revealed?.allowed_models.find((pattern) => !pattern.includes('*')) ?? models.data?.[0]?.alias}
        onClose={() => setRevealed(null)}
      />
    </PageCard>
  );
}
