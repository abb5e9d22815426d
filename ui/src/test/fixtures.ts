import type { DashboardCards, Model, PriceHistory, Provider, ProviderKey, RequestRow, Summary, Token } from '../api/types';

export const provider: Provider = {
  id: 'mock',
  name: 'Mock upstream',
  protocol: 'openai',
  base_url: 'http://127.0.0.1:9100/v1',
  extra_headers: {},
  timeouts: { connect_ms: 5000, first_byte_ms: 60000, idle_ms: 60000, total_ms: 600000 },
  enabled: true,
  allow_private_network: true,
  version: 3,
};

export const keys: ProviderKey[] = [
  {
    id: 'k1',
    provider_id: 'mock',
    name: 'main',
    last_four: 'abcd',
    enabled: true,
    version: 4,
    health: {
      last_success_at: '2026-11-26T07:00:00Z',
      last_error_at: null,
      last_error: null,
      last_status: 200,
      last_latency_ms: 12,
      updated_at: null,
    },
  },
  {
    id: 'k2',
    provider_id: 'mock',
    name: 'backup',
    last_four: 'wxyz',
    enabled: true,
    version: 5,
    health: {
      last_success_at: null,
      last_error_at: '2026-11-26T07:00:00Z',
      last_error: 'upstream answered 401 Unauthorized',
      last_status: 401,
      last_latency_ms: 30,
      updated_at: null,
    },
  },
];

export const model: Model = {
  id: 'm1',
  alias: 'gpt-test',
  enabled: true,
  version: 6,
  routes: [{ provider_id: 'mock', upstream_model: 'gpt-4.1', key_ids: [], priority: 0, weight: 1 }],
  price: {
    currency: 'USD',
    input_per_million: '2',
    output_per_million: '8',
    cache_read_per_million: '0.5',
    cache_write_per_million: '0',
    version: 1,
  },
};

export const token: Token = {
  id: 't1',
  name: 'CI pipeline',
  owner_user_id: 'admin-id',
  last_four: 'Zz9q',
  allowed_models: ['gpt-*'],
  rpm: 120,
  tpm: null,
  budget: { amount: '25', currency: 'USD', period: 'monthly' },
  expires_at: null,
  enabled: true,
  version: 7,
};

export const summary: Summary = {
  requests: 42,
  success: 40,
  error: 2,
  cancelled: 0,
  input_tokens: 1234,
  output_tokens: 5678,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
  cost: { amount: '0.123456', currency: 'USD' },
  error_rate: 2 / 42,
  latency_ms: { p50: 120, p95: 480, p99: 950 },
  ttfb_ms: { p50: 40, p95: 90, p99: 200 },
  cache: { hits: 7, saved_input_tokens: 900, saved_output_tokens: 300, saved_cost: { amount: '0.0042', currency: 'USD' } },
};

export const requestRow: RequestRow = {
  occurred_at: '2026-11-26T07:01:02Z',
  request_id: 'req-1',
  token_id: 't1',
  user_id: 'admin-id',
  model_alias: 'gpt-test',
  provider_id: 'mock',
  upstream_model: 'gpt-4.1',
  provider_key_id: 'k1',
  client_protocol: 'openai_chat',
  stream: false,
  outcome: 'success',
  error_kind: null,
  http_status: 200,
  input_tokens: 11,
  output_tokens: 8,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
  cost: '0.000086',
  currency: 'USD',
  latency_ms: 130,
  ttfb_ms: 45,
  attempts: 1,
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  price_version: 3,
  config_seq: 42,
};

export const dashboard: DashboardCards = {
  active_providers: 2,
  enabled_models: 3,
  healthy_keys: 4,
  total_keys: 5,
  requests_today: 1234,
  spend_today: { amount: '12.5', currency: 'USD' },
  requests_last_minute: 7,
  error_rate_today: 0.025,
  latency_p95_ms_today: 480,
};

/** The price versions of `model` (m1, gpt-test), oldest first as the API gives them. */
export const priceHistory: PriceHistory = {
  model_id: 'm1',
  versions: [
    {
      version: 1,
      currency: 'USD',
      input_per_million: '2',
      output_per_million: '8',
      cache_read_per_million: '0.5',
      cache_write_per_million: '0',
      since_seq: 5,
      since: '2026-11-20T09:00:00Z',
      by: 'admin',
      alias: 'gpt-test',
    },
    {
      version: 2,
      currency: 'USD',
      input_per_million: '2.5',
      output_per_million: '10',
      cache_read_per_million: '1.25',
      cache_write_per_million: '0',
      since_seq: 12,
      since: '2026-11-24T10:15:00Z',
      by: 'operator',
      alias: 'gpt-test',
    },
    {
      version: 3,
      currency: 'USD',
      input_per_million: '3.1',
      output_per_million: '12.7',
      cache_read_per_million: '0.33',
      cache_write_per_million: '0.2',
      since_seq: 30,
      since: '2026-12-03T08:30:02Z',
      by: null,
      alias: 'gpt-test',
    },
  ],
};
