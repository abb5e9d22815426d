import { useState } from 'react';
import { Alert, App, Button, Input, Modal, Space, Typography } from 'antd';
import { CopyOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import { MODEL_PLACEHOLDER, defaultGatewayUrl, rememberGatewayUrl, snippets } from './snippets';

async function copy(text: string) {
  if (navigator.clipboard?.writeText) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Without the async clipboard (plain http on another host): the classic selection copy.
  const area = document.createElement('textarea');
  area.value = text;
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

/** Shows a token secret once, with copy buttons and usage snippets. */
export function SecretModal({
  secret,
  name,
  model,
  onClose,
}: {
  secret: string | null;
  name?: string;
  model?: string;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const [gateway, setGateway] = useState(defaultGatewayUrl);
  if (!secret) return null;
  const code = snippets(gateway, secret, model ?? MODEL_PLACEHOLDER);
  const copyButton = (text: string, label: string, size: 'small' | 'middle' = 'small') => (
    <Button
      size={size}
      icon={<CopyOutlined />}
      aria-label={`copy-${label}`}
      onClick={() =>
        copy(text).then(
          () => message.success(t('common.copied')),
          () => message.error('clipboard'),
        )
      }
    >
      {t('common.copy')}
    </Button>
  );
  const block = (text: string, label: string) => (
    <div>
      <div style={{ textAlign: 'right', marginBottom: 4 }}>{copyButton(text, label)}</div>
      <pre data-testid={`snippet-${label}`} style={{ background: '#f6f8fa', padding: 12, borderRadius: 6, overflowX: 'auto', margin: 0 }}>
        {text}
      </pre>
    </div>
  );
  return (
    <Modal
      open
      title={`${t('tokens.secretTitle')}${name ? `: ${name}` : ''}`}
      width={760}
      onCancel={onClose}
      footer={
        <Button type="primary" onClick={onClose}>
          {t('common.close')}
        </Button>
      }
      maskClosable={false}
    >
      <Alert type="warning" showIcon message={t('tokens.secretOnce')} style={{ marginBottom: 12 }} />
      <Space.Compact style={{ width: '100%', marginBottom: 12 }}>
        <Input readOnly value={secret} data-testid="token-secret" style={{ fontFamily: 'monospace' }} />
        {copyButton(secret, 'secret', 'middle')}
      </Space.Compact>
      <Space style={{ marginBottom: 8 }}>
        <Typography.Text>{t('tokens.gatewayUrl')}</Typography.Text>
        <Input
          value={gateway}
          style={{ width: 320 }}
          onChange={(event) => {
            setGateway(event.target.value);
            rememberGatewayUrl(event.target.value);
          }}
        />
      </Space>
      {/* Every snippet at once: eight tabs would not fit the dialog's width. */}
      <Space direction="vertical" style={{ width: '100%' }}>
        {code.map((snippet) => (
          <div key={snippet.key}>
            <Typography.Text strong>{t(`getStarted.snippets.${snippet.key}`)}</Typography.Text>
            {block(snippet.text, snippet.key)}
          </div>
        ))}
      </Space>
    </Modal>
  );
}
