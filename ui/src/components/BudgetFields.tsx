import { Col, Form, Input, Row, Select } from 'antd';
import { useTranslation } from 'react-i18next';
import type { Budget, BudgetPeriod } from '../api/types';

const PERIODS: BudgetPeriod[] = ['daily', 'weekly', 'monthly', 'total'];

/** The form values of a budget: an amount left empty means no budget. */
export interface BudgetValues {
  budget_amount?: string;
  budget_currency: string;
  budget_period: BudgetPeriod;
}

export function budgetValues(budget: Budget | null | undefined): BudgetValues {
  return {
    budget_amount: budget?.amount ?? '',
    budget_currency: budget?.currency ?? 'USD',
    budget_period: budget?.period ?? 'monthly',
  };
}

/** The budget the fields describe, or null when the amount is empty. Money stays a decimal string. */
export function budgetOf(values: BudgetValues): Budget | null {
  const amount = values.budget_amount?.trim();
  return amount ? { amount, currency: (values.budget_currency ?? 'USD').trim().toUpperCase(), period: values.budget_period } : null;
}

/** Amount, currency and period of a budget (tokens, users, teams share them). */
export function BudgetFields({ label, disabled }: { label: string; disabled?: boolean }) {
  const { t } = useTranslation();
  return (
    <Row gutter={16}>
      <Col span={10}>
        <Form.Item name="budget_amount" label={label} rules={[{ pattern: /^\d+(\.\d+)?$/, message: '"25"' }]}>
          <Input placeholder={t('common.unlimited')} aria-label="budget-amount" disabled={disabled} />
        </Form.Item>
      </Col>
      <Col span={6}>
        <Form.Item name="budget_currency" label={t('models.currency')}>
          <Input aria-label="budget-currency" disabled={disabled} />
        </Form.Item>
      </Col>
      <Col span={8}>
        <Form.Item name="budget_period" label={t('tokens.period')}>
          <Select
            aria-label="budget-period"
            disabled={disabled}
            options={PERIODS.map((period) => ({ value: period, label: t(`tokens.periods.${period}`) }))}
          />
        </Form.Item>
      </Col>
    </Row>
  );
}
