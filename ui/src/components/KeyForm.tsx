import { Button, Form, Input, Select, Space, Switch } from 'antd';
import { useTranslation } from 'react-i18next';
import type { KeyInput, Provider, ProviderKey } from '../api/types';
import { useErrorReporter } from './errors';

/** What the form sends: a key's input without its id. */
export type KeyBody = Omit<KeyInput, 'id'>;

/**
 * Adds a key (the secret is required and sent once) or edits one (a new secret is optional;
 * the current one is never shown, only its last four characters).
 */
export function KeyForm({
  keyItem,
  providers,
  defaultProviderId,
  onSubmit,
  onCancel,
}: {
  keyItem?: ProviderKey;
  providers: Provider[];
  defaultProviderId?: string;
  onSubmit: (body: KeyBody) => Promise<unknown>;
  onCancel?: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<KeyBody>();
  const report = useErrorReporter();
  const finish = async (values: KeyBody) => {
    const body: KeyBody = { provider_id: values.provider_id, name: values.name, enabled: values.enabled };
    if (values.secret) body.secret = values.secret;
    try {
      await onSubmit(body);
    } catch (error) {
      report(error, form);
    }
  };
  return (
    <Form
      form={form}
      layout="vertical"
      onFinish={finish}
      initialValues={
        keyItem
          ? { provider_id: keyItem.provider_id, name: keyItem.name, enabled: keyItem.enabled }
          : { provider_id: defaultProviderId, enabled: true }
      }
    >
      <Form.Item name="provider_id" label={t('keys.provider')} rules={[{ required: true }]}>
        <Select
          disabled={!!keyItem}
          showSearch
          optionFilterProp="label"
          options={providers.map((provider) => ({ value: provider.id, label: provider.name }))}
        />
      </Form.Item>
      <Form.Item name="name" label={t('common.name')} rules={[{ required: true }]}>
        <Input />
      </Form.Item>
      <Form.Item
        name="secret"
        label={keyItem ? t('keys.newSecret') : t('keys.secret')}
        extra={keyItem ? `${t('keys.newSecretHelp')} (••••${keyItem.last_four})` : t('keys.secretHelp')}
        rules={keyItem ? [] : [{ required: true }]}
      >
        <Input.Password autoComplete="off" visibilityToggle={false} />
      </Form.Item>
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
