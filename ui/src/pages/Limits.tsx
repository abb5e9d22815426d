import { App, Button, Card, Col, Form, Input, InputNumber, Row, Select, Space, Spin, Switch, Typography } from 'antd';
import { MinusCircleOutlined, PlusOutlined } from '@ant-design/icons';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, get, put } from '../api/client';
import { useAll } from '../api/hooks';
import type { Rate, RateLimits, SpendAlerts } from '../api/generated';
import type { Model, User } from '../api/types';
import { canRead, canWrite } from '../auth/permissions';
import { useSession } from '../auth/session';
import { ErrorAlert, useErrorReporter } from '../components/errors';
import { PageCard } from '../components/PageCard';

const PATH = '/settings/rate_limits';
const ALERTS_PATH = '/settings/spend_alerts';

interface Stored<T = RateLimits> {
  value: T;
  version: number;
}

/** A setting, or null when it is not set. */
async function getSetting<T>(path: string): Promise<Stored<T> | null> {
  try {
    return await get<Stored<T>>(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

interface AlertValues {
  thresholds: string;
  webhook_url: string;
  allow_private_network: boolean;
}

/** The `spend_alerts` value the form describes. */
export function spendAlertsOf(values: AlertValues): SpendAlerts {
  const thresholds = values.thresholds
    .split(/[\s,%]+/)
    .filter(Boolean)
    .map(Number);
  const url = values.webhook_url?.trim() ?? '';
  return {
    thresholds,
    ...(url ? { webhook_url: url } : {}),
    ...(url && values.allow_private_network ? { allow_private_network: true } : {}),
  };
}

/** Spend alerts: thresholds of each token's budget, and the webhook they are sent to. */
export function SpendAlertsCard() {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const { user } = useSession();
  const editable = canWrite(user?.role, 'setting');
  const client = useQueryClient();
  const report = useErrorReporter();
  const [form] = Form.useForm<AlertValues>();
  const stored = useQuery({ queryKey: [ALERTS_PATH], queryFn: () => getSetting<SpendAlerts>(ALERTS_PATH) });
  const save = useMutation({
    mutationFn: (value: SpendAlerts) =>
      put<Stored<SpendAlerts>>(ALERTS_PATH, stored.data ? { value, version: stored.data.version } : { value }),
    onSuccess: () => client.invalidateQueries({ queryKey: [ALERTS_PATH] }),
    onError: () => client.invalidateQueries({ queryKey: [ALERTS_PATH] }),
  });
  if (stored.isLoading) return <Spin />;
  if (stored.error) return <ErrorAlert error={stored.error} />;
  const value = stored.data?.value;
  return (
    <Card size="small" title={t('limits.alerts')} style={{ marginBottom: 16 }}>
      <Typography.Paragraph type="secondary">{t('limits.alertsHelp')}</Typography.Paragraph>
      <Form
        form={form}
        layout="vertical"
        key={stored.data?.version ?? 0}
        initialValues={{
          thresholds: (value?.thresholds ?? [50, 80, 100]).join(', '),
          webhook_url: value?.webhook_url ?? '',
          allow_private_network: value?.allow_private_network ?? false,
        }}
        onFinish={async (values) => {
          try {
            await save.mutateAsync(spendAlertsOf(values));
            void message.success(t('limits.alertsSaved'));
          } catch (error) {
            report(error, form);
          }
        }}
      >
        <Row gutter={8}>
          <Col span={6}>
            <Form.Item name="thresholds" label={t('limits.thresholds')} rules={[{ required: true }]}>
              <Input aria-label="alert-thresholds" placeholder="50, 80, 100" disabled={!editable} />
            </Form.Item>
          </Col>
          <Col span={12}>
            <Form.Item name="webhook_url" label={t('limits.webhookUrl')}>
              <Input aria-label="alert-webhook_url" placeholder="https://hooks.example.com/axongate" disabled={!editable} />
            </Form.Item>
          </Col>
          <Col span={6}>
            <Form.Item name="allow_private_network" label={t('limits.allowPrivate')} valuePropName="checked">
              <Switch aria-label="alert-allow_private_network" disabled={!editable} />
            </Form.Item>
          </Col>
        </Row>
        {editable && (
          <Space style={{ display: 'flex', justifyContent: 'flex-end' }}>
            <Button htmlType="submit" loading={save.isPending}>
              {t('limits.saveAlerts')}
            </Button>
          </Space>
        )}
      </Form>
    </Card>
  );
}

interface RateValues {
  rpm: number | null;
  tpm: number | null;
}

interface Values {
  per_user: RateValues;
  per_address: RateValues;
  users: ({ id: string } & RateValues)[];
  models: ({ alias: string } & RateValues)[];
}

function rateOf(values: RateValues | undefined): Rate | null {
  const rate: Rate = {};
  if (values?.rpm != null) rate.rpm = values.rpm;
  if (values?.tpm != null) rate.tpm = values.tpm;
  return Object.keys(rate).length > 0 ? rate : null;
}

/** The setting the form describes: only the limits that are set. */
export function rateLimitsOf(values: Values): RateLimits {
  const limits: RateLimits = {};
  const perUser = rateOf(values.per_user);
  if (perUser) limits.per_user = perUser;
  const perAddress = rateOf(values.per_address);
  if (perAddress) limits.per_address = perAddress;
  const users: Record<string, Rate> = {};
  for (const row of values.users ?? []) {
    const rate = rateOf(row);
    if (row?.id && rate) users[row.id] = rate;
  }
  if (Object.keys(users).length > 0) limits.users = users;
  const models: Record<string, Rate> = {};
  for (const row of values.models ?? []) {
    const rate = rateOf(row);
    if (row?.alias && rate) models[row.alias] = rate;
  }
  if (Object.keys(models).length > 0) limits.models = models;
  return limits;
}

function valuesOf(limits: RateLimits | undefined): Values {
  const rate = (value: Rate | undefined): RateValues => ({ rpm: value?.rpm ?? null, tpm: value?.tpm ?? null });
  return {
    per_user: rate(limits?.per_user),
    per_address: rate(limits?.per_address),
    users: Object.entries(limits?.users ?? {}).map(([id, value]) => ({ id, ...rate(value) })),
    models: Object.entries(limits?.models ?? {}).map(([alias, value]) => ({ alias, ...rate(value) })),
  };
}

function RateFields({ name, label, disabled }: { name: (string | number)[]; label: string; disabled: boolean }) {
  const { t } = useTranslation();
  return (
    <>
      <Col span={6}>
        <Form.Item name={[...name, 'rpm']} label={t('limits.rpm')}>
          <InputNumber min={1} style={{ width: '100%' }} aria-label={`${label}-rpm`} disabled={disabled} />
        </Form.Item>
      </Col>
      <Col span={6}>
        <Form.Item name={[...name, 'tpm']} label={t('limits.tpm')}>
          <InputNumber min={1} style={{ width: '100%' }} aria-label={`${label}-tpm`} disabled={disabled} />
        </Form.Item>
      </Col>
    </>
  );
}

/** The limits by dimension (the `rate_limits` setting): per user, per model, per client address. */
export function LimitsPage() {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const { user } = useSession();
  const role = user?.role;
  const editable = canWrite(role, 'rate_limits');
  const client = useQueryClient();
  const report = useErrorReporter();
  const [form] = Form.useForm<Values>();
  const stored = useQuery({ queryKey: [PATH], queryFn: () => getSetting<RateLimits>(PATH) });
  const users = useAll<User>('/users', canRead(role, 'user'));
  const models = useAll<Model>('/models', canRead(role, 'model'));
  const save = useMutation({
    mutationFn: (value: RateLimits) => put<Stored>(PATH, stored.data ? { value, version: stored.data.version } : { value }),
    onSuccess: () => client.invalidateQueries({ queryKey: [PATH] }),
    onError: () => client.invalidateQueries({ queryKey: [PATH] }),
  });
  if (stored.isLoading) return <Spin />;
  if (stored.error) return <ErrorAlert error={stored.error} />;
  const userOptions = (users.data ?? []).map((item) => ({ value: item.id, label: item.username }));
  const modelOptions = (models.data ?? []).map((item) => ({ value: item.alias, label: item.alias }));
  return (
    <PageCard title={t('limits.title')}>
      <Typography.Paragraph type="secondary">{t('limits.help')}</Typography.Paragraph>
      <Form
        form={form}
        layout="vertical"
        key={stored.data?.version ?? 0}
        initialValues={valuesOf(stored.data?.value)}
        onFinish={async (values) => {
          try {
            await save.mutateAsync(rateLimitsOf(values));
            void message.success(t('limits.saved'));
          } catch (error) {
            report(error, form);
          }
        }}
      >
        <Card size="small" title={t('limits.perUser')} style={{ marginBottom: 16 }}>
          <Row gutter={8}>
            <RateFields name={['per_user']} label="per_user" disabled={!editable} />
          </Row>
          <Typography.Text type="secondary">{t('limits.usersHelp')}</Typography.Text>
          <Form.List name="users">
            {(fields, { add, remove }) => (
              <>
                {fields.map((field) => (
                  <Row gutter={8} key={field.key} align="bottom">
                    <Col span={10}>
                      <Form.Item name={[field.name, 'id']} label={t('limits.user')} rules={[{ required: true }]}>
                        <Select showSearch options={userOptions} aria-label={`user-${field.name}`} disabled={!editable} />
                      </Form.Item>
                    </Col>
                    <RateFields name={[field.name]} label={`user-${field.name}`} disabled={!editable} />
                    {editable && (
                      <Col span={2}>
                        <MinusCircleOutlined aria-label={`remove-user-${field.name}`} onClick={() => remove(field.name)} />
                      </Col>
                    )}
                  </Row>
                ))}
                {editable && (
                  <Button icon={<PlusOutlined />} onClick={() => add({ id: undefined, rpm: null, tpm: null })}>
                    {t('limits.addUser')}
                  </Button>
                )}
              </>
            )}
          </Form.List>
        </Card>
        <Card size="small" title={t('limits.perModel')} style={{ marginBottom: 16 }}>
          <Typography.Paragraph type="secondary">{t('limits.modelsHelp')}</Typography.Paragraph>
          <Form.List name="models">
            {(fields, { add, remove }) => (
              <>
                {fields.map((field) => (
                  <Row gutter={8} key={field.key} align="bottom">
                    <Col span={10}>
                      <Form.Item name={[field.name, 'alias']} label={t('limits.model')} rules={[{ required: true }]}>
                        <Select showSearch options={modelOptions} aria-label={`model-${field.name}`} disabled={!editable} />
                      </Form.Item>
                    </Col>
                    <RateFields name={[field.name]} label={`model-${field.name}`} disabled={!editable} />
                    {editable && (
                      <Col span={2}>
                        <MinusCircleOutlined aria-label={`remove-model-${field.name}`} onClick={() => remove(field.name)} />
                      </Col>
                    )}
                  </Row>
                ))}
                {editable && (
                  <Button icon={<PlusOutlined />} onClick={() => add({ alias: undefined, rpm: null, tpm: null })}>
                    {t('limits.addModel')}
                  </Button>
                )}
              </>
            )}
          </Form.List>
        </Card>
        <Card size="small" title={t('limits.perAddress')} style={{ marginBottom: 16 }}>
          <Typography.Paragraph type="secondary">{t('limits.addressHelp')}</Typography.Paragraph>
          <Row gutter={8}>
            <RateFields name={['per_address']} label="per_address" disabled={!editable} />
          </Row>
        </Card>
        {editable && (
          <Space style={{ display: 'flex', justifyContent: 'flex-end' }}>
            <Button type="primary" htmlType="submit" loading={save.isPending}>
              {t('common.save')}
            </Button>
          </Space>
        )}
      </Form>
      <div style={{ marginTop: 16 }}>
        <SpendAlertsCard />
      </div>
    </PageCard>
  );
}
