import { Button, Card, Col, Form, Input, InputNumber, Row, Select, Space, Switch } from 'antd';
import { MinusCircleOutlined, PlusOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import type { Model, Price, Provider, ProviderKey, ResponseCache, RetryPolicy, Route, Routing, RoutingStrategy } from '../api/types';
import { useErrorReporter } from './errors';

export interface ModelBody {
  alias: string;
  enabled: boolean;
  routes: Route[];
  price: Price | null;
  context_window: number | null;
  retry: RetryPolicy | null;
  response_cache: ResponseCache | null;
  routing: Routing | null;
}

interface RetryValues {
  max_attempts: number | null;
  retry_on: string;
  breaker_failures: number | null;
  breaker_cooldown_secs: number | null;
  bench_when_all_open: boolean;
}

/** The policy the form's retry fields describe; null when every field is left empty. */
export function retryPolicy(values: RetryValues | undefined): RetryPolicy | null {
  if (!values) return null;
  const policy: RetryPolicy = {};
  if (values.max_attempts != null) policy.max_attempts = values.max_attempts;
  const statuses = (values.retry_on ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  if (statuses.length > 0) policy.retry_on = statuses;
  if (values.breaker_failures != null) policy.breaker_failures = values.breaker_failures;
  if (values.breaker_cooldown_secs != null) policy.breaker_cooldown_secs = values.breaker_cooldown_secs;
  if (values.bench_when_all_open) policy.bench_when_all_open = true;
  return Object.keys(policy).length > 0 ? policy : null;
}

interface Values {
  alias: string;
  enabled: boolean;
  routes: Route[];
  has_price: boolean;
  price: {
    currency: string;
    input_per_million: string;
    output_per_million: string;
    cache_read_per_million: string;
    cache_write_per_million: string;
  };
  context_window: number | null;
  retry: RetryValues;
  cache: { on: boolean; ttl_secs: number | null; across_tokens: boolean; sampled: boolean };
  routing: { strategy: RoutingStrategy; session_header: string };
}

const DECIMAL = /^\d+(\.\d+)?$/;

/** The routing the form's fields describe; null for the default (weighted, no header). */
export function routingOf(values: Values['routing'] | undefined): Routing | null {
  if (!values || values.strategy === 'weighted') return null;
  const header = values.session_header?.trim() ?? '';
  return {
    strategy: values.strategy,
    ...(values.strategy === 'cache_affinity' && header ? { session_header: header } : {}),
  };
}

export function ModelForm({
  model,
  providers,
  keys,
  onSubmit,
  onCancel,
}: {
  model?: Model;
  providers: Provider[];
  keys: ProviderKey[];
  onSubmit: (body: ModelBody) => Promise<unknown>;
  onCancel?: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<Values>();
  const report = useErrorReporter();
  const initial: Values = {
    alias: model?.alias ?? '',
    enabled: model?.enabled ?? true,
    routes: model?.routes ?? [{ provider_id: providers[0]?.id ?? '', upstream_model: '', key_ids: [], priority: 0, weight: 1 }],
    has_price: model ? !!model.price : true,
    price: {
      currency: model?.price?.currency ?? 'USD',
      input_per_million: model?.price?.input_per_million ?? '',
      output_per_million: model?.price?.output_per_million ?? '',
      cache_read_per_million: model?.price?.cache_read_per_million ?? '0',
      cache_write_per_million: model?.price?.cache_write_per_million ?? '0',
    },
    context_window: model?.context_window ?? null,
    retry: {
      max_attempts: model?.retry?.max_attempts ?? null,
      retry_on: (model?.retry?.retry_on ?? []).join(', '),
      breaker_failures: model?.retry?.breaker_failures ?? null,
      breaker_cooldown_secs: model?.retry?.breaker_cooldown_secs ?? null,
      bench_when_all_open: model?.retry?.bench_when_all_open ?? false,
    },
    cache: {
      on: !!model?.response_cache,
      ttl_secs: model?.response_cache?.ttl_secs ?? 3600,
      across_tokens: model?.response_cache?.across_tokens ?? false,
      sampled: model?.response_cache?.sampled ?? false,
    },
    routing: {
      strategy: model?.routing?.strategy ?? 'weighted',
      session_header: model?.routing?.session_header ?? '',
    },
  };
  // What the form does not edit (a route's declared capabilities) is kept as it was.
  const capabilitiesOf = (route: Route) =>
    model?.routes.find((original) => original.provider_id === route.provider_id && original.upstream_model === route.upstream_model.trim())
      ?.capabilities;
  const hasPrice = Form.useWatch('has_price', form) ?? initial.has_price;
  const caching = Form.useWatch(['cache', 'on'], form) ?? initial.cache.on;
  const routes = Form.useWatch('routes', form) as Route[] | undefined;
  const strategy = Form.useWatch(['routing', 'strategy'], form) ?? initial.routing.strategy;

  const finish = async (values: Values) => {
    const body: ModelBody = {
      alias: values.alias.trim(),
      enabled: values.enabled,
      routes: (values.routes ?? []).map((route) => {
        const capabilities = capabilitiesOf(route);
        return {
          provider_id: route.provider_id,
          upstream_model: route.upstream_model.trim(),
          key_ids: route.key_ids ?? [],
          priority: route.priority ?? 0,
          weight: route.weight ?? 1,
          ...(capabilities ? { capabilities } : {}),
        };
      }),
      price: values.has_price
        ? {
            currency: values.price.currency.trim().toUpperCase(),
            input_per_million: values.price.input_per_million.trim(),
            output_per_million: values.price.output_per_million.trim(),
            cache_read_per_million: (values.price.cache_read_per_million || '0').trim(),
            cache_write_per_million: (values.price.cache_write_per_million || '0').trim(),
          }
        : null,
      context_window: values.context_window ?? null,
      retry: retryPolicy(values.retry),
      response_cache: values.cache?.on
        ? {
            ttl_secs: values.cache.ttl_secs ?? 3600,
            ...(values.cache.across_tokens ? { across_tokens: true } : {}),
            ...(values.cache.sampled ? { sampled: true } : {}),
          }
        : null,
      routing: routingOf(values.routing),
    };
    try {
      await onSubmit(body);
    } catch (error) {
      report(error, form);
    }
  };

  const decimalRule = { pattern: DECIMAL, message: '"2.5"' };
  return (
    <Form form={form} layout="vertical" initialValues={initial} onFinish={finish}>
      <Row gutter={16}>
        <Col span={10}>
          <Form.Item name="alias" label={t('models.alias')} tooltip={t('models.aliasHelp')} rules={[{ required: true }]}>
            <Input placeholder="gpt-4.1" />
          </Form.Item>
        </Col>
        <Col span={8}>
          <Form.Item name="context_window" label={t('models.contextWindow')}>
            <InputNumber min={1} style={{ width: '100%' }} />
          </Form.Item>
        </Col>
        <Col span={6}>
          <Form.Item name="enabled" label={t('common.enabled')} valuePropName="checked">
            <Switch />
          </Form.Item>
        </Col>
      </Row>
      <Card size="small" title={t('models.routes')} style={{ marginBottom: 16 }}>
        <Form.List name="routes">
          {(fields, { add, remove }) => (
            <>
              {fields.map((field, index) => {
                const providerId = routes?.[index]?.provider_id;
                return (
                  <Row gutter={8} key={field.key} align="bottom" data-testid={`route-${index}`}>
                    <Col span={6}>
                      <Form.Item name={[field.name, 'provider_id']} label={t('models.provider')} rules={[{ required: true }]}>
                        <Select
                          aria-label={`route-${index}-provider`}
                          options={providers.map((provider) => ({ value: provider.id, label: provider.name }))}
                        />
                      </Form.Item>
                    </Col>
                    <Col span={6}>
                      <Form.Item name={[field.name, 'upstream_model']} label={t('models.upstreamModel')} rules={[{ required: true }]}>
                        <Input aria-label={`route-${index}-upstream`} />
                      </Form.Item>
                    </Col>
                    <Col span={5}>
                      <Form.Item name={[field.name, 'key_ids']} label={t('models.keyIds')}>
                        <Select
                          mode="multiple"
                          allowClear
                          options={keys.filter((key) => key.provider_id === providerId).map((key) => ({ value: key.id, label: key.name }))}
                        />
                      </Form.Item>
                    </Col>
                    <Col span={3}>
                      <Form.Item name={[field.name, 'priority']} label={t('models.priority')}>
                        <InputNumber min={0} style={{ width: '100%' }} aria-label={`route-${index}-priority`} />
                      </Form.Item>
                    </Col>
                    <Col span={3}>
                      <Form.Item name={[field.name, 'weight']} label={t('models.weight')}>
                        <InputNumber min={0} style={{ width: '100%' }} aria-label={`route-${index}-weight`} />
                      </Form.Item>
                    </Col>
                    <Col span={1}>
                      <Form.Item>
                        <MinusCircleOutlined aria-label={`remove-route-${index}`} onClick={() => remove(field.name)} />
                      </Form.Item>
                    </Col>
                  </Row>
                );
              })}
              <Button
                type="dashed"
                icon={<PlusOutlined />}
                onClick={() => add({ provider_id: providers[0]?.id, upstream_model: '', key_ids: [], priority: 0, weight: 1 })}
              >
                {t('models.addRoute')}
              </Button>
            </>
          )}
        </Form.List>
      </Card>
      <Card
        size="small"
        title={
          <Space>
            {t('models.price')}
            <Form.Item name="has_price" valuePropName="checked" noStyle>
              <Switch size="small" aria-label="has-price" />
            </Form.Item>
          </Space>
        }
        style={{ marginBottom: 16 }}
      >
        {hasPrice && (
          <Row gutter={8}>
            <Col span={4}>
              <Form.Item name={['price', 'currency']} label={t('models.currency')} rules={[{ required: true }]}>
                <Input aria-label="price-currency" />
              </Form.Item>
            </Col>
            {(['input_per_million', 'output_per_million', 'cache_read_per_million', 'cache_write_per_million'] as const).map((field) => (
              <Col span={5} key={field}>
                <Form.Item
                  name={['price', field]}
                  label={t(
                    `models.${{ input_per_million: 'input', output_per_million: 'output', cache_read_per_million: 'cacheRead', cache_write_per_million: 'cacheWrite' }[field]}`,
                  )}
                  rules={field.startsWith('cache') ? [decimalRule] : [{ required: true }, decimalRule]}
                >
                  <Input aria-label={`price-${field}`} />
                </Form.Item>
              </Col>
            ))}
          </Row>
        )}
      </Card>
      <Card
        size="small"
        title={t('models.retry')}
        extra={<span style={{ fontSize: 12, color: 'rgba(0,0,0,0.45)' }}>{t('models.retryHelp')}</span>}
        style={{ marginBottom: 16 }}
      >
        <Row gutter={8}>
          <Col span={4}>
            <Form.Item name={['retry', 'max_attempts']} label={t('models.maxAttempts')}>
              <InputNumber min={1} max={10} style={{ width: '100%' }} aria-label="retry-max_attempts" />
            </Form.Item>
          </Col>
          <Col span={6}>
            <Form.Item
              name={['retry', 'retry_on']}
              label={t('models.retryOn')}
              tooltip={t('models.retryOnHelp')}
              rules={[{ pattern: /^\s*(\d{3}\s*(,\s*|\s+)?)*$/, message: '429, 503' }]}
            >
              <Input aria-label="retry-retry_on" placeholder="429, 503" />
            </Form.Item>
          </Col>
          <Col span={4}>
            <Form.Item name={['retry', 'breaker_failures']} label={t('models.breakerFailures')}>
              <InputNumber min={1} max={1000} style={{ width: '100%' }} aria-label="retry-breaker_failures" />
            </Form.Item>
          </Col>
          <Col span={4}>
            <Form.Item name={['retry', 'breaker_cooldown_secs']} label={t('models.breakerCooldown')}>
              <InputNumber min={0} max={3600} style={{ width: '100%' }} aria-label="retry-breaker_cooldown_secs" />
            </Form.Item>
          </Col>
          <Col span={6}>
            <Form.Item
              name={['retry', 'bench_when_all_open']}
              label={t('models.benchWhenAllOpen')}
              tooltip={t('models.benchWhenAllOpenHelp')}
              valuePropName="checked"
            >
              <Switch aria-label="retry-bench_when_all_open" />
            </Form.Item>
          </Col>
        </Row>
      </Card>
      <Card
        size="small"
        title={t('models.cache')}
        extra={<span style={{ fontSize: 12, color: 'rgba(0,0,0,0.45)' }}>{t('models.cacheHelp')}</span>}
        style={{ marginBottom: 16 }}
      >
        <Row gutter={8}>
          <Col span={4}>
            <Form.Item name={['cache', 'on']} label={t('models.cacheOn')} valuePropName="checked">
              <Switch aria-label="cache-on" />
            </Form.Item>
          </Col>
          {caching && (
            <>
              <Col span={6}>
                <Form.Item name={['cache', 'ttl_secs']} label={t('models.cacheTtl')} rules={[{ required: true }]}>
                  <InputNumber min={1} max={2592000} style={{ width: '100%' }} aria-label="cache-ttl_secs" />
                </Form.Item>
              </Col>
              <Col span={7}>
                <Form.Item
                  name={['cache', 'across_tokens']}
                  label={t('models.cacheAcrossTokens')}
                  tooltip={t('models.cacheAcrossTokensHelp')}
                  valuePropName="checked"
                >
                  <Switch aria-label="cache-across_tokens" />
                </Form.Item>
              </Col>
              <Col span={7}>
                <Form.Item
                  name={['cache', 'sampled']}
                  label={t('models.cacheSampled')}
                  tooltip={t('models.cacheSampledHelp')}
                  valuePropName="checked"
                >
                  <Switch aria-label="cache-sampled" />
                </Form.Item>
              </Col>
            </>
          )}
        </Row>
      </Card>
      <Card
        size="small"
        title={t('models.routing')}
        extra={<span style={{ fontSize: 12, color: 'rgba(0,0,0,0.45)' }}>{t('models.routingHelp')}</span>}
        style={{ marginBottom: 16 }}
      >
        <Row gutter={8}>
          <Col span={12}>
            <Form.Item name={['routing', 'strategy']} label={t('models.strategy')}>
              <Select
                aria-label="routing-strategy"
                options={[
                  { value: 'weighted', label: t('models.strategyWeighted') },
                  { value: 'least_in_flight', label: t('models.strategyLeastInFlight') },
                  { value: 'latency', label: t('models.strategyLatency') },
                  { value: 'cache_affinity', label: t('models.strategyCacheAffinity') },
                ]}
              />
            </Form.Item>
          </Col>
          {strategy === 'cache_affinity' && (
            <Col span={12}>
              <Form.Item
                name={['routing', 'session_header']}
                label={t('models.sessionHeader')}
                tooltip={t('models.sessionHeaderHelp')}
                rules={[{ pattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]{0,64}$/, message: 'x-session-id' }]}
              >
                <Input placeholder="x-session-id" aria-label="routing-session_header" />
              </Form.Item>
            </Col>
          )}
        </Row>
      </Card>
      <Space style={{ display: 'flex', justifyContent: 'flex-end' }}>
        {onCancel && <Button onClick={onCancel}>{t('common.cancel')}</Button>}
        <Button type="primary" htmlType="submit">
          {t('common.save')}
        </Button>
      </Space>
    </Form>
  );
}
