import { useState } from 'react';
import { App, Button, Input, Modal, Popconfirm, Progress, Space, Table, Tag, Typography } from 'antd';
import { PlusOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import { useAll, useList, useResourceMutations } from '../api/hooks';
import type { Budget, Model, Team, TeamMember, User } from '../api/types';
import { useSession } from '../auth/session';
import { canEditTeamMembers, canRead, canWrite } from '../auth/permissions';
import { ErrorAlert, useErrorReporter } from '../components/errors';
import { PageCard } from '../components/PageCard';
import { TeamForm } from '../components/TeamForm';
import { formatMoney, formatNumber, formatPercent } from '../format';

/** The team's spend in the current period against its budget: a bar with the share, and "3.14 / 25.00 USD monthly". */
export function SpendAgainstBudget({ spend, budget }: { spend: Team['spend']; budget?: Budget | null }) {
  const { t } = useTranslation();
  if (!spend) return <Typography.Text type="secondary">—</Typography.Text>;
  const period = t(`tokens.periods.${budget?.period ?? spend.period}`);
  if (!budget) return <>{`${formatMoney(spend.amount, spend.currency)} ${period}`}</>;
  const sameCurrency = spend.currency === budget.currency;
  const text = `${formatMoney(spend.amount, sameCurrency ? undefined : spend.currency)} / ${formatMoney(budget.amount, budget.currency)} ${period}`;
  const limit = Number(budget.amount);
  const ratio = sameCurrency && limit > 0 ? Number(spend.amount) / limit : null;
  return (
    <Space direction="vertical" size={0} style={{ minWidth: 160 }}>
      {ratio !== null && Number.isFinite(ratio) && (
        <Progress
          percent={Math.min(100, ratio * 100)}
          size="small"
          status={ratio >= 1 ? 'exception' : 'normal'}
          format={() => formatPercent(ratio)}
        />
      )}
      <Typography.Text>{text}</Typography.Text>
    </Space>
  );
}

/** Teams: who is in each, what they may call, their budget and spend. Members see only their teams. */
export function TeamsPage() {
  const { t } = useTranslation();
  const { user } = useSession();
  const { message } = App.useApp();
  const report = useErrorReporter();
  const role = user?.role;
  const writable = canWrite(role, 'team');
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const [search, setSearch] = useState('');
  const list = useList<Team>('/teams', { q: search, limit: page.pageSize, offset: (page.current - 1) * page.pageSize });
  const users = useAll<User>('/users', canRead(role, 'user'));
  const models = useAll<Model>('/models', canRead(role, 'model'));
  const { create, update, remove } = useResourceMutations<Team>('/teams');
  const [editing, setEditing] = useState<Team | 'new' | null>(null);

  const nameOf = (id: string) => {
    if (id === user?.id) return user.username;
    return users.data?.find((candidate) => candidate.id === id)?.username ?? id;
  };

  return (
    <PageCard
      title={t('teams.title')}
      extra={
        <>
          <Input.Search
            allowClear
            placeholder={t('common.search')}
            onSearch={(value) => {
              setSearch(value);
              setPage({ ...page, current: 1 });
            }}
            style={{ width: 200 }}
          />
          {writable && (
            <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')}>
              {t('teams.new')}
            </Button>
          )}
        </>
      }
    >
      <Typography.Paragraph type="secondary">{t('teams.help')}</Typography.Paragraph>
      <ErrorAlert error={list.error} />
      <Table<Team>
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
            render: (name: string, team) => (
              <Space direction="vertical" size={0}>
                <Typography.Text strong>{name}</Typography.Text>
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  {team.id}
                </Typography.Text>
              </Space>
            ),
          },
          {
            title: t('teams.members'),
            dataIndex: 'members',
            render: (members: TeamMember[]) => (
              <Space direction="vertical" size={2}>
                <Typography.Text type="secondary">{t('teams.memberCount', { count: members.length })}</Typography.Text>
                <Space size={[0, 4]} wrap style={{ maxWidth: 260 }}>
                  {members.map((member) => (
                    <Tag key={member.user_id} color={member.role === 'admin' ? 'blue' : undefined} title={t(`teams.roles.${member.role}`)}>
                      {member.username ?? nameOf(member.user_id)}
                      {member.role === 'admin' ? ` · ${t('teams.roles.admin')}` : ''}
                    </Tag>
                  ))}
                </Space>
              </Space>
            ),
          },
          {
            title: t('teams.allowedModels'),
            dataIndex: 'allowed_models',
            render: (patterns: string[]) =>
              patterns.length ? (
                patterns.map((pattern) => <Tag key={pattern}>{pattern}</Tag>)
              ) : (
                <Typography.Text type="secondary">*</Typography.Text>
              ),
          },
          {
            title: t('teams.budget'),
            dataIndex: 'budget',
            render: (budget?: Budget | null) =>
              budget ? `${formatMoney(budget.amount, budget.currency)} ${t(`tokens.periods.${budget.period}`)}` : '—',
          },
          {
            title: t('teams.spend'),
            key: 'spend',
            render: (_, team) => <SpendAgainstBudget spend={team.spend} budget={team.budget} />,
          },
          {
            title: t('teams.limits'),
            key: 'limits',
            render: (_, team) => `${team.rpm != null ? formatNumber(team.rpm) : '∞'} / ${team.tpm != null ? formatNumber(team.tpm) : '∞'}`,
          },
          {
            title: t('common.actions'),
            key: 'actions',
            render: (_, team) => (
              <Space size={4}>
                {canEditTeamMembers(user, team) && (
                  <Button size="small" onClick={() => setEditing(team)}>
                    {t('common.edit')}
                  </Button>
                )}
                {writable && (
                  <Popconfirm
                    title={t('common.confirmDelete', { name: team.name })}
                    onConfirm={() =>
                      remove.mutateAsync(team).then(
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
        ]}
      />
      <Modal
        open={editing !== null}
        title={editing === 'new' ? t('teams.new') : t('common.edit')}
        footer={null}
        width={720}
        destroyOnClose
        onCancel={() => setEditing(null)}
      >
        {editing !== null && (
          <TeamForm
            team={editing === 'new' ? undefined : editing}
            users={canRead(role, 'user') ? (users.data ?? []) : undefined}
            modelAliases={(models.data ?? []).map((model) => model.alias)}
            membersOnly={!writable}
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
