import { Alert, Button, Col, Form, Input, InputNumber, Row, Select, Space } from 'antd';
import { MinusCircleOutlined, PlusOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import type { Team, TeamBody, TeamMember, TeamMemberBody, TeamRole, User } from '../api/types';
import { BudgetFields, budgetOf, budgetValues, type BudgetValues } from './BudgetFields';
import { useErrorReporter } from './errors';

const TEAM_ROLES: TeamRole[] = ['member', 'admin'];

interface Values extends BudgetValues {
  name: string;
  members: { user_id?: string; role: TeamRole }[];
  allowed_models: string[];
  rpm?: number | null;
  tpm?: number | null;
}

/**
 * The members the rows describe: rows without a user are left out. Without a user list the
 * rows hold usernames (or ids): a current member's is sent as their id, anyone else's as a
 * username for the API to resolve.
 */
export function membersOf(rows: Values['members'] | undefined, current: TeamMember[] = [], byName = false): TeamMemberBody[] {
  return (rows ?? [])
    .filter((row) => row?.user_id?.trim())
    .map((row) => {
      const given = row.user_id!.trim();
      const role = row.role ?? 'member';
      if (!byName) return { user_id: given, role };
      const known = current.find((member) => member.user_id === given || (member.username && member.username === given));
      return known ? { user_id: known.user_id, role } : { username: given, role };
    });
}

/**
 * Name, members (a user and their role in the team), allowed models, budget and per-minute
 * limits. With `membersOnly` (a team admin who is not an operator) every field but the members
 * is shown disabled, and only the members are sent.
 */
export function TeamForm({
  team,
  users,
  modelAliases,
  membersOnly = false,
  onSubmit,
  onCancel,
}: {
  team?: Team;
  /** The users to pick members from; absent for a caller who may not list users (members are then entered by id). */
  users?: User[];
  modelAliases: string[];
  membersOnly?: boolean;
  onSubmit: (body: TeamBody) => Promise<unknown>;
  onCancel?: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<Values>();
  const report = useErrorReporter();
  const initial: Values = {
    name: team?.name ?? '',
    // Without a user list, members are shown (and typed) by username.
    members:
      team?.members.map((member) => ({ user_id: users ? member.user_id : (member.username ?? member.user_id), role: member.role })) ?? [],
    allowed_models: team?.allowed_models ?? [],
    rpm: team?.rpm ?? null,
    tpm: team?.tpm ?? null,
    ...budgetValues(team?.budget),
  };
  const userOptions = (users ?? []).map((user) => ({
    value: user.id,
    label: user.display_name ? `${user.display_name} (${user.username})` : user.username,
  }));

  const finish = async (values: Values) => {
    const members = membersOf(values.members, team?.members ?? [], !users);
    let body: TeamBody;
    if (membersOnly) {
      body = { members };
    } else {
      body = { name: values.name.trim(), members, allowed_models: values.allowed_models ?? [] };
      // A new team leaves out what it does not have; an edit sends null to remove it.
      const budget = budgetOf(values);
      if (budget || team) body.budget = budget;
      if (values.rpm != null || team) body.rpm = values.rpm ?? null;
      if (values.tpm != null || team) body.tpm = values.tpm ?? null;
    }
    try {
      await onSubmit(body);
    } catch (error) {
      report(error, form);
    }
  };

  return (
    <Form form={form} layout="vertical" initialValues={initial} onFinish={finish}>
      {membersOnly && <Alert type="info" showIcon message={t('teams.membersOnly')} style={{ marginBottom: 16 }} />}
      <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
        <Input aria-label="team-name" disabled={membersOnly} />
      </Form.Item>
      <Form.Item label={t('teams.members')} required={false}>
        <Form.List name="members">
          {(fields, { add, remove }) => (
            <>
              {fields.map((field) => (
                <Row gutter={8} key={field.key} align="top">
                  <Col span={14}>
                    <Form.Item
                      name={[field.name, 'user_id']}
                      rules={[
                        { required: true, message: users ? t('teams.user') : t('teams.username') },
                        ({ getFieldValue }) => ({
                          validator: (_, value?: string) => {
                            const rows = (getFieldValue('members') ?? []) as Values['members'];
                            const same = rows.filter((row) => value && row?.user_id?.trim() === value.trim()).length;
                            return same > 1 ? Promise.reject(new Error(t('teams.duplicateMember'))) : Promise.resolve();
                          },
                        }),
                      ]}
                    >
                      {users ? (
                        <Select
                          showSearch
                          optionFilterProp="label"
                          placeholder={t('teams.user')}
                          aria-label={`member-${field.name}-user`}
                          options={userOptions}
                        />
                      ) : (
                        <Input placeholder={t('teams.username')} aria-label={`member-${field.name}-user`} />
                      )}
                    </Form.Item>
                  </Col>
                  <Col span={8}>
                    <Form.Item name={[field.name, 'role']}>
                      <Select
                        aria-label={`member-${field.name}-role`}
                        options={TEAM_ROLES.map((role) => ({ value: role, label: t(`teams.roles.${role}`) }))}
                      />
                    </Form.Item>
                  </Col>
                  <Col span={2} style={{ paddingTop: 6 }}>
                    <MinusCircleOutlined aria-label={`remove-member-${field.name}`} onClick={() => remove(field.name)} />
                  </Col>
                </Row>
              ))}
              <Button icon={<PlusOutlined />} onClick={() => add({ user_id: undefined, role: 'member' })}>
                {t('teams.addMember')}
              </Button>
            </>
          )}
        </Form.List>
      </Form.Item>
      <Form.Item name="allowed_models" label={t('teams.allowedModels')} extra={t('tokens.allowedHelp')}>
        <Select
          mode="tags"
          aria-label="team-allowed-models"
          disabled={membersOnly}
          options={modelAliases.map((alias) => ({ value: alias, label: alias }))}
        />
      </Form.Item>
      <BudgetFields label={t('teams.budget')} disabled={membersOnly} />
      <Row gutter={16}>
        <Col span={12}>
          <Form.Item name="rpm" label={t('tokens.rpm')}>
            <InputNumber
              min={1}
              style={{ width: '100%' }}
              placeholder={t('common.unlimited')}
              aria-label="team-rpm"
              disabled={membersOnly}
            />
          </Form.Item>
        </Col>
        <Col span={12}>
          <Form.Item name="tpm" label={t('tokens.tpm')}>
            <InputNumber
              min={1}
              style={{ width: '100%' }}
              placeholder={t('common.unlimited')}
              aria-label="team-tpm"
              disabled={membersOnly}
            />
          </Form.Item>
        </Col>
      </Row>
      <Space style={{ display: 'flex', justifyContent: 'flex-end' }}>
        {onCancel && <Button onClick={onCancel}>{t('common.cancel')}</Button>}
        <Button type="primary" htmlType="submit">
          {t('common.save')}
        </Button>
      </Space>
    </Form>
  );
}
