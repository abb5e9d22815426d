import { useState } from 'react';
import { App, Button, Form, Input, Modal, Popconfirm, Select, Space, Switch, Table, Tag, Typography } from 'antd';
import { PlusOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import { useAll, useList, useResourceMutations } from '../api/hooks';
import type { Budget, Model, Role, User } from '../api/types';
import { useSession } from '../auth/session';
import { BudgetFields, budgetOf, budgetValues, type BudgetValues } from '../components/BudgetFields';
import { ErrorAlert, useErrorReporter } from '../components/errors';
import { PageCard } from '../components/PageCard';
import { formatMoney, formatTime } from '../format';

const ROLES: Role[] = ['admin', 'operator', 'viewer', 'member'];

export interface UserBody {
  username: string;
  display_name: string;
  role: Role;
  enabled: boolean;
  password?: string;
  /** Sent when set, and as null when an existing budget is removed. */
  budget?: Budget | null;
  /** Sent when set, and empty when existing patterns are removed. */
  allowed_models?: string[];
}

interface UserValues extends BudgetValues {
  username: string;
  display_name?: string;
  role: Role;
  enabled: boolean;
  password?: string;
  allowed_models?: string[];
}

export function UserForm({
  user,
  modelAliases = [],
  onSubmit,
  onCancel,
}: {
  user?: User;
  modelAliases?: string[];
  onSubmit: (body: UserBody) => Promise<unknown>;
  onCancel?: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<UserValues>();
  const report = useErrorReporter();
  return (
    <Form
      form={form}
      layout="vertical"
      initialValues={{
        ...(user
          ? { username: user.username, display_name: user.display_name, role: user.role, enabled: user.enabled }
          : { role: 'member', enabled: true }),
        allowed_models: user?.allowed_models ?? [],
        ...budgetValues(user?.budget),
      }}
      onFinish={async (values) => {
        const body: UserBody = {
          username: values.username.trim(),
          display_name: values.display_name ?? '',
          role: values.role,
          enabled: values.enabled,
        };
        if (values.password) body.password = values.password;
        const budget = budgetOf(values);
        if (budget || user?.budget) body.budget = budget;
        const patterns = values.allowed_models ?? [];
        if (patterns.length > 0 || (user?.allowed_models?.length ?? 0) > 0) body.allowed_models = patterns;
        try {
          await onSubmit(body);
        } catch (error) {
          report(error, form);
        }
      }}
    >
      <Form.Item name="username" label={t('users.username')} rules={[{ required: true }]}>
        <Input autoComplete="off" />
      </Form.Item>
      <Form.Item name="display_name" label={t('users.displayName')}>
        <Input />
      </Form.Item>
      <Form.Item name="role" label={t('users.role')} rules={[{ required: true }]}>
        <Select aria-label="user-role" options={ROLES.map((role) => ({ value: role, label: t(`users.roles.${role}`) }))} />
      </Form.Item>
      <Form.Item
        name="password"
        label={user ? t('users.resetPassword') : t('users.password')}
        extra={t('users.resetHelp')}
        rules={[...(user ? [] : [{ required: true }]), { min: 8, message: t('login.minLength') }]}
      >
        <Input.Password autoComplete="new-password" />
      </Form.Item>
      <Form.Item name="allowed_models" label={t('users.allowedModels')} extra={t('users.allowedHelp')}>
        <Select mode="tags" aria-label="user-allowed-models" options={modelAliases.map((alias) => ({ value: alias, label: alias }))} />
      </Form.Item>
      <BudgetFields label={t('users.budget')} />
      <Form.Item name="enabled" label={t('common.enabled')} valuePropName="checked">
        <Switch />
      </Form.Item>
      <Space style={{ display: 'flex', justifyContent: 'flex-end' }}>
        {onCancel && <Button onClick={onCancel}>{t('common.cancel')}</Button>}
        <Button type="primary" htmlType="submit">
          {t('common.save')}
        </Button>
      </Space>
    </Form>
  );
}

export function UsersPage() {
  const { t } = useTranslation();
  const { user: me } = useSession();
  const { message } = App.useApp();
  const report = useErrorReporter();
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const [search, setSearch] = useState('');
  const list = useList<User>('/users', { q: search, limit: page.pageSize, offset: (page.current - 1) * page.pageSize });
  const { create, update, remove } = useResourceMutations<User>('/users');
  const models = useAll<Model>('/models');
  const [editing, setEditing] = useState<User | 'new' | null>(null);

  return (
    <PageCard
      title={t('users.title')}
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
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing('new')}>
            {t('users.new')}
          </Button>
        </>
      }
    >
      <ErrorAlert error={list.error} />
      <Table<User>
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
          { title: t('users.username'), dataIndex: 'username' },
          { title: t('users.displayName'), dataIndex: 'display_name' },
          {
            title: t('users.role'),
            dataIndex: 'role',
            render: (role: Role) => (
              <Tag color={role === 'admin' ? 'red' : role === 'operator' ? 'blue' : role === 'viewer' ? 'cyan' : 'default'}>
                {t(`users.roles.${role}`)}
              </Tag>
            ),
          },
          {
            title: t('users.allowedModels'),
            dataIndex: 'allowed_models',
            render: (patterns?: string[]) =>
              patterns?.length ? (
                patterns.map((pattern) => <Tag key={pattern}>{pattern}</Tag>)
              ) : (
                <Typography.Text type="secondary">*</Typography.Text>
              ),
          },
          {
            title: t('tokens.budget'),
            dataIndex: 'budget',
            render: (budget?: Budget | null) =>
              budget ? `${formatMoney(budget.amount, budget.currency)} ${t(`tokens.periods.${budget.period}`)}` : '—',
          },
          {
            title: t('users.mustChange'),
            dataIndex: 'must_change_password',
            render: (value: boolean) => (value ? t('common.yes') : t('common.no')),
          },
          { title: t('common.updatedAt'), dataIndex: 'updated_at', render: formatTime },
          {
            title: t('common.enabled'),
            dataIndex: 'enabled',
            render: (enabled: boolean, user) => (
              <Switch
                checked={enabled}
                disabled={user.id === me?.id}
                onChange={(checked) => update.mutate({ item: user, changes: { enabled: checked } }, { onError: (error) => report(error) })}
              />
            ),
          },
          {
            title: t('common.actions'),
            key: 'actions',
            render: (_, user) => (
              <Space>
                <Button size="small" onClick={() => setEditing(user)}>
                  {t('common.edit')}
                </Button>
                {user.id !== me?.id && (
                  <Popconfirm
                    title={t('common.confirmDelete', { name: user.username })}
                    onConfirm={() =>
                      remove.mutateAsync(user).then(
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
        title={editing === 'new' ? t('users.new') : t('common.edit')}
        footer={null}
        destroyOnClose
        onCancel={() => setEditing(null)}
      >
        {editing !== null && (
          <UserForm
            user={editing === 'new' ? undefined : editing}
            modelAliases={(models.data ?? []).map((model) => model.alias)}
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
