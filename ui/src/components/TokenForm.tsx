import { Button, Col, DatePicker, Form, Input, InputNumber, Row, Select, Space, Switch } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useTranslation } from 'react-i18next';
import type { BudgetPeriod, Token, User } from '../api/types';
import { useErrorReporter } from './errors';

export interface TokenBody {
  name: string;
  owner_user_id?: string;
  allowed_models: string[];
  rpm: number | null;
  tpm: number | null;
  budget: { amount: string; currency: string; period: BudgetPeriod } | null;
  expires_at: string | null;
  enabled: boolean;
}

interface Values {
  name: string;
  owner_user_id?: string;
  allowed_models: string[];
  rpm?: number | null;
  tpm?: number | null;
  budget_amount?: string;
  budget_currency: string;
  budget_period: BudgetPeriod;
  expires_at?: Dayjs | null;
  enabled: boolean;
}

/** Name, owner (for those who manage everyone's tokens), allowed models, limits, budget, expiry. */
export function TokenForm({
  token,
  users,
  modelAliases,
  onSubmit,
  onCancel,
}: {
  token?: Token;
  /** Absent for a member, who can only own their tokens. */
  users?: User[];
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
    allowed_models: token?.allowed_models ?? [],
    rpm: token?.rpm ?? null,
    tpm: token?.tpm ?? null,
    budget_amount: token?.budget?.amount ?? '',
    budget_currency: token?.budget?.currency ?? 'USD',
    budget_period: token?.budget?.period ?? 'monthly',
    expires_at: token?.expires_at ? dayjs(token.expires_at) : null,
    enabled: token?.enabled ?? true,
  };

  const finish = async (values: Values) => {
    const amount = values.budget_amount?.trim();
    const body: TokenBody = {
      name: values.name.trim(),
      allowed_models: values.allowed_models ?? [],
      rpm: values.rpm ?? null,
      tpm: values.tpm ?? null,
      budget: amount ? { amount, currency: values.budget_currency.trim().toUpperCase(), period: values.budget_period } : null,
      expires_at: values.expires_at ? values.expires_at.toISOString() : null,
      enabled: values.enabled,
    };
    if (users && values.owner_user_id) body.owner_user_id = values.owner_user_id;
    try {
      await onSubmit(body);
    } catch (error) {
      report(error, form);
    }
  };

  return (
    <Form form={form} layout="vertical" initialValues={initial} onFinish={finish}>
      <Row gutter={16}>
        <Col span={users ? 12 : 24}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
        </Col>
        {users && (
          <Col span={12}>
            <Form.Item name="owner_user_id" label={t('tokens.owner')}>
              <Select
                allowClear
                showSearch
                optionFilterProp="label"
                placeholder={t('tokens.mine')}
                options={users.map((user) => ({
                  value: user.id,
                  label: user.display_name ? `${user.display_name} (${user.username})` : user.username,
                }))}
              />
            </Form.Item>
          </Col>
        )}
      </Row>
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
      <Row gutter={16}>
        <Col span={10}>
          <Form.Item name="budget_amount" label={t('tokens.budget')} rules={[{ pattern: /^\d+(\.\d+)?$/, message: '"25"' }]}>
            <Input placeholder={t('common.unlimited')} aria-label="budget-amount" />
          </Form.Item>
        </Col>
        <Col span={6}>
          <Form.Item name="budget_currency" label={t('models.currency')}>
            <Input aria-label="budget-currency" />
          </Form.Item>
        </Col>
        <Col span={8}>
          <Form.Item name="budget_period" label={t('tokens.period')}>
            <Select
              options={(['daily', 'weekly', 'monthly', 'total'] as const).map((period) => ({
                value: period,
                label: t(`tokens.periods.${period}`),
              }))}
            />
          </Form.Item>
        </Col>
      </Row>
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
