import { Button, Col, DatePicker, Form, Input, InputNumber, Row, Select, Space, Switch } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useTranslation } from 'react-i18next';
import type { Budget, Team, Token, User } from '../api/types';
import { BudgetFields, budgetOf, budgetValues, type BudgetValues } from './BudgetFields';
import { useErrorReporter } from './errors';

export interface TokenBody {
  name: string;
  owner_user_id?: string;
  allowed_models: string[];
  rpm: number | null;
  tpm: number | null;
  budget: Budget | null;
  expires_at: string | null;
  enabled: boolean;
  /** Sent when a team is chosen, and as null when one is taken off the token. */
  team_id?: string | null;
}

interface Values extends BudgetValues {
  name: string;
  owner_user_id?: string;
  team_id?: string;
  allowed_models: string[];
  rpm?: number | null;
  tpm?: number | null;
  expires_at?: Dayjs | null;
  enabled: boolean;
}

const userLabel = (user: User) => (user.display_name ? `${user.display_name} (${user.username})` : user.username);

/**
 * Name, team, owner (for those who manage everyone's tokens, and for a team admin among the
 * members of their team), allowed models, limits, budget, expiry.
 */
export function TokenForm({
  token,
  users,
  teams,
  managedTeamIds = [],
  modelAliases,
  onSubmit,
  onCancel,
}: {
  token?: Token;
  /** Absent for a member, who can only own their tokens (or their team's members', as its admin). */
  users?: User[];
  /** The teams the token may be charged to; absent: no team choice. */
  teams?: Team[];
  /** The teams the caller administers: with one of them chosen, the owner may be any of its members. */
  managedTeamIds?: string[];
  modelAliases: string[];
  onSubmit: (body: TokenBody) => Promise<unknown>;
  onCancel?: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<Values>();
  const report = useErrorReporter();
  const initial: Values = {
    name: token?.name ?? '',
    owner_user_id: token?.owner_user_id,
    team_id: token?.team_id ?? undefined,
    allowed_models: token?.allowed_models ?? [],
    rpm: token?.rpm ?? null,
    tpm: token?.tpm ?? null,
    ...budgetValues(token?.budget),
    expires_at: token?.expires_at ? dayjs(token.expires_at) : null,
    enabled: token?.enabled ?? true,
  };

  const chosenTeamId = Form.useWatch('team_id', form) as string | undefined;
  const teamOf = (id: string | undefined) => (id ? teams?.find((team) => team.id === id) : undefined);
  // Everyone's manager picks any owner; a team admin picks among the members of their team.
  const ownerChoice = (teamId: string | undefined) => Boolean(users) || managedTeamIds.includes(teamId ?? '');
  const chosenTeam = teamOf(chosenTeamId);
  const showOwner = ownerChoice(chosenTeamId);
  const nameOf = (id: string) => {
    const user = users?.find((candidate) => candidate.id === id);
    return user ? userLabel(user) : id;
  };
  const ownerOptions = chosenTeam
    ? chosenTeam.members.map((member) => ({ value: member.user_id, label: nameOf(member.user_id) }))
    : (users ?? []).map((user) => ({ value: user.id, label: userLabel(user) }));

  const finish = async (values: Values) => {
    const body: TokenBody = {
      name: values.name.trim(),
      allowed_models: values.allowed_models ?? [],
      rpm: values.rpm ?? null,
      tpm: values.tpm ?? null,
      budget: budgetOf(values),
      expires_at: values.expires_at ? values.expires_at.toISOString() : null,
      enabled: values.enabled,
    };
    if (ownerChoice(values.team_id) && values.owner_user_id) body.owner_user_id = values.owner_user_id;
    if (values.team_id) body.team_id = values.team_id;
    else if (token?.team_id) body.team_id = null;
    try {
      await onSubmit(body);
    } catch (error) {
      report(error, form);
    }
  };

  return (
    <Form form={form} layout="vertical" initialValues={initial} onFinish={finish}>
      <Row gutter={16}>
        <Col span={showOwner ? 12 : 24}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
        </Col>
        {showOwner && (
          <Col span={12}>
            <Form.Item name="owner_user_id" label={t('tokens.owner')}>
              <Select
                allowClear
                showSearch
                optionFilterProp="label"
                aria-label="token-owner"
                placeholder={t('tokens.mine')}
                options={ownerOptions}
              />
            </Form.Item>
          </Col>
        )}
      </Row>
      {teams && (
        <Form.Item name="team_id" label={t('tokens.team')} extra={t('tokens.teamHelp')}>
          <Select
            allowClear
            showSearch
            optionFilterProp="label"
            aria-label="token-team"
            placeholder={t('tokens.noTeam')}
            options={teams.map((team) => ({ value: team.id, label: team.name }))}
          />
        </Form.Item>
      )}
      <Form.Item name="allowed_models" label={t('tokens.allowedModels')} extra={t('tokens.allowedHelp')}>
        <Select mode="tags" aria-label="allowed-models" options={modelAliases.map((alias) => ({ value: alias, label: alias }))} />
      </Form.Item>
      <Row gutter={16}>
        <Col span={12}>
          <Form.Item name="rpm" label={t('tokens.rpm')}>
            <InputNumber min={1} style={{ width: '100%' }} placeholder={t('common.unlimited')} aria-label="rpm" />
          </Form.Item>
        </Col>
        <Col span={12}>
          <Form.Item name="tpm" label={t('tokens.tpm')}>
            <InputNumber min={1} style={{ width: '100%' }} placeholder={t('common.unlimited')} aria-label="tpm" />
          </Form.Item>
        </Col>
      </Row>
      <BudgetFields label={t('tokens.budget')} />
      <Row gutter={16}>
        <Col span={12}>
          <Form.Item name="expires_at" label={t('tokens.expires')}>
            <DatePicker showTime style={{ width: '100%' }} placeholder={t('common.never')} />
          </Form.Item>
        </Col>
        <Col span={12}>
          <Form.Item name="enabled" label={t('common.enabled')} valuePropName="checked">
            <Switch />
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
