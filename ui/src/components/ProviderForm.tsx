import { Alert, Button, Col, Form, Input, InputNumber, Row, Select, Space, Switch } from 'antd';
import { MinusCircleOutlined, PlusOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import type { Provider, ProviderInput, ProviderKey } from '../api/types';
import { useErrorReporter } from './errors';

/** What the form sends: every field of a provider's input, and (`key_secrets`) each key's
 * secret entered again, required from a non-admin who moves the provider. */
export type ProviderBody = Required<Omit<ProviderInput, 'id' | 'key_secrets'>> & Pick<ProviderInput, 'key_secrets'>;

interface Values extends Omit<ProviderBody, 'extra_headers' | 'key_secrets'> {
  extra_headers: { name: string; value: string }[];
  key_secrets?: Record<string, string>;
}

const DEFAULT_TIMEOUTS = { connect_ms: 5000, first_byte_ms: 60000, idle_ms: 60000, total_ms: 600000 };

/**
 * `keys` are the provider's keys; with `reenterSecrets` (a caller who may not change where keys
 * are sent), moving the provider asks for each key's secret again, as the API requires.
 */
export function ProviderForm({
  provider,
  keys = [],
  reenterSecrets = false,
  onSubmit,
  onCancel,
}: {
  provider?: Provider;
  keys?: ProviderKey[];
  reenterSecrets?: boolean;
  onSubmit: (body: ProviderBody) => Promise<unknown>;
  onCancel?: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<Values>();
  const baseUrl = Form.useWatch('base_url', form);
  const allowPrivate = Form.useWatch('allow_private_network', form);
  const moved =
    !!provider &&
    ((baseUrl !== undefined && baseUrl.trim() !== provider.base_url) ||
      (allowPrivate !== undefined && allowPrivate !== provider.allow_private_network));
  const askSecrets = reenterSecrets && moved && keys.length > 0;
  const report = useErrorReporter();
  const initial: Values = provider
    ? {
        ...provider,
        extra_headers: Object.entries(provider.extra_headers ?? {}).map(([name, value]) => ({ name, value })),
        timeouts: { ...DEFAULT_TIMEOUTS, ...provider.timeouts },
      }
    : {
        name: '',
        protocol: 'openai',
        base_url: '',
        extra_headers: [],
        timeouts: DEFAULT_TIMEOUTS,
        enabled: true,
        allow_private_network: false,
      };

  const finish = async (values: Values) => {
    const body: ProviderBody = {
      name: values.name,
      protocol: values.protocol,
      base_url: values.base_url.trim(),
      extra_headers: Object.fromEntries(
        (values.extra_headers ?? []).filter((header) => header?.name).map((header) => [header.name.trim(), header.value ?? '']),
      ),
      timeouts: values.timeouts,
      enabled: values.enabled,
      allow_private_network: values.allow_private_network,
      ...(askSecrets ? { key_secrets: Object.fromEntries(keys.map((key) => [key.id, values.key_secrets?.[key.id] ?? ''])) } : {}),
    };
    try {
      await onSubmit(body);
    } catch (error) {
      report(error, form);
    }
  };

  return (
    <Form form={form} layout="vertical" initialValues={initial} onFinish={finish} aria-label="provider-form">
      <Row gutter={16}>
        <Col span={14}>
          <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
        </Col>
        <Col span={10}>
          <Form.Item name="protocol" label={t('providers.protocol')} rules={[{ required: true }]}>
            <Select
              options={[
                { value: 'openai', label: t('providers.protocolOpenai') },
                { value: 'openai_responses', label: t('providers.protocolResponses') },
                { value: 'anthropic', label: t('providers.protocolAnthropic') },
                { value: 'gemini', label: t('providers.protocolGemini') },
              ]}
            />
          </Form.Item>
        </Col>
      </Row>
      <Form.Item
        name="base_url"
        label={t('providers.baseUrl')}
        extra={t('providers.baseUrlHelp')}
        rules={[{ required: true }, { type: 'url' }]}
      >
        <Input placeholder="https://api.openai.com/v1" />
      </Form.Item>
      <Space size="large">
        <Form.Item name="enabled" label={t('common.enabled')} valuePropName="checked">
          <Switch />
        </Form.Item>
        <Form.Item
          name="allow_private_network"
          label={t('providers.allowPrivate')}
          tooltip={t('providers.allowPrivateHelp')}
          valuePropName="checked"
        >
          <Switch />
        </Form.Item>
      </Space>
      <Form.Item label={t('providers.timeouts')} style={{ marginBottom: 0 }}>
        <Row gutter={8}>
          {(['connect_ms', 'first_byte_ms', 'idle_ms', 'total_ms'] as const).map((field) => (
            <Col span={6} key={field}>
              <Form.Item
                name={['timeouts', field]}
                label={t(
                  `providers.${{ connect_ms: 'connect', first_byte_ms: 'firstByte', idle_ms: 'idle', total_ms: 'totalTimeout' }[field]}`,
                )}
                rules={[{ required: true }]}
              >
                <InputNumber min={1} max={3_600_000} style={{ width: '100%' }} />
              </Form.Item>
            </Col>
          ))}
        </Row>
      </Form.Item>
      <Form.Item label={t('providers.extraHeaders')}>
        <Form.List name="extra_headers">
          {(fields, { add, remove }) => (
            <>
              {fields.map((field) => (
                <Space key={field.key} align="baseline">
                  <Form.Item name={[field.name, 'name']} rules={[{ required: true }]}>
                    <Input placeholder={t('providers.headerName')} />
                  </Form.Item>
                  <Form.Item name={[field.name, 'value']}>
                    <Input placeholder={t('providers.headerValue')} />
                  </Form.Item>
                  <MinusCircleOutlined onClick={() => remove(field.name)} />
                </Space>
              ))}
              <Button type="dashed" onClick={() => add({ name: '', value: '' })} icon={<PlusOutlined />}>
                {t('providers.addHeader')}
              </Button>
            </>
          )}
        </Form.List>
      </Form.Item>
      {askSecrets && (
        <>
          <Alert type="warning" showIcon message={t('providers.reenterSecrets')} style={{ marginBottom: 12 }} />
          {keys.map((key) => (
            <Form.Item
              key={key.id}
              name={['key_secrets', key.id]}
              label={t('providers.secretOf', { name: key.name })}
              rules={[{ required: true }]}
            >
              <Input.Password autoComplete="new-password" aria-label={`secret-of-${key.name}`} />
            </Form.Item>
          ))}
        </>
      )}
      <Space style={{ display: 'flex', justifyContent: 'flex-end' }}>
        {onCancel && <Button onClick={onCancel}>{t('common.cancel')}</Button>}
        <Button type="primary" htmlType="submit">
          {t('common.save')}
        </Button>
      </Space>
    </Form>
  );
}
