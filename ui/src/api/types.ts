// Shapes of the admin API's responses (see admin-api/README.md and the analytics contract).
// The config shapes and inputs come from the Rust types (generated.ts); the views here add what
// the API renders around them.
import type {
  BudgetPeriod,
  Provider as ProviderState,
  Protocol,
  ResponseCache,
  RetryPolicy,
  Role,
  Route,
  Routing,
  RoutingStrategy,
} from './generated';

export type {
  BudgetInput,
  BudgetPeriod,
  Capabilities,
  KeyInput,
  ModelInput,
  PriceInput,
  ProviderInput,
  ResponseCache,
  RetryPolicy,
  Role,
  Route,
  Routing,
  RoutingStrategy,
  Timeouts,
  TokenInput,
} from './generated';

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Versioned {
  version: number;
  created_at?: string | null;
  updated_at?: string | null;
  updated_by?: string | null;
}

export interface Me {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  must_change_password: boolean;
  session_expires_at?: string | null;
  /** The teams the user belongs to, with their role in each (a team admin manages its members and tokens). */
  teams?: MeTeam[];
  /** The account signs in with single sign-on (it has no password unless an admin set one). */
  sso?: boolean;
}

/** A team's role for one of its members: an admin manages the team's members and the tokens charged to it. */
export type TeamRole = 'admin' | 'member';

export interface MeTeam {
  id: string;
  name: string;
  role: TeamRole;
}

export interface Budget {
  amount: string;
  currency: string;
  period: BudgetPeriod;
}

export interface TeamMember {
  user_id: string;
  role: TeamRole;
  /** The member's username, as the API shows it (null when the user is gone). */
  username?: string | null;
}

/** A member as sent: by user id, or by username (for a caller who may not list users). */
export type TeamMemberBody = { user_id: string; role: TeamRole } | { username: string; role: TeamRole };

/** A team: users who share a budget, a set of allowed models and per-minute limits. */
export interface Team extends Versioned {
  id: string;
  name: string;
  members: TeamMember[];
  /** Glob patterns over model aliases; empty allows every model. */
  allowed_models: string[];
  budget?: Budget | null;
  rpm?: number | null;
  tpm?: number | null;
  /** The team's spend in the current period (the budget's, or monthly without a budget), since `since`. */
  spend?: (Budget & { since?: string | null }) | null;
}

/** What creating a team takes; an update sends the changed fields (null removes budget, rpm or tpm). */
export interface TeamBody {
  id?: string;
  name?: string;
  members?: TeamMemberBody[];
  allowed_models?: string[];
  budget?: Budget | null;
  rpm?: number | null;
  tpm?: number | null;
}

export interface LoginResponse {
  token: string;
  expires_at: string | null;
  user: Me;
}

/** `GET /auth/oidc`: whether single sign-on is configured, and where the browser starts it. */
export interface OidcInfo {
  enabled: boolean;
  login_url?: string;
}

/** The wire protocol a provider speaks: OpenAI Chat Completions (and OpenAI-compatible servers), OpenAI Responses, Anthropic Messages or Gemini. */
export type ProviderProtocol = Protocol;

export type Provider = ProviderState & Versioned;

export interface KeyHealth {
  last_success_at: string | null;
  last_error_at: string | null;
  last_error: string | null;
  last_status: number | null;
  last_latency_ms: number | null;
  updated_at: string | null;
}

export interface ProviderKey extends Versioned {
  id: string;
  provider_id: string;
  name: string;
  last_four: string;
  enabled: boolean;
  health: KeyHealth | null;
}

export interface KeyTestResult {
  health_recorded: boolean;
  ok: boolean;
  status: number | null;
  latency_ms: number;
  error: string | null;
  key: ProviderKey;
}

export interface Price {
  currency: string;
  input_per_million: string;
  output_per_million: string;
  cache_read_per_million?: string;
  cache_write_per_million?: string;
  version?: number;
}

export interface Model extends Versioned {
  id: string;
  alias: string;
  enabled: boolean;
  routes: Route[];
  price?: Price | null;
  context_window?: number | null;
  retry?: RetryPolicy | null;
  response_cache?: ResponseCache | null;
  routing?: Routing | null;
}

export interface Token extends Versioned {
  id: string;
  name: string;
  owner_user_id: string;
  last_four: string;
  allowed_models: string[];
  rpm?: number | null;
  tpm?: number | null;
  budget?: Budget | null;
  expires_at?: string | null;
  enabled: boolean;
  /** The team the token's spend is charged to (its owner is a member of it). */
  team_id?: string | null;
  /** Only in the response that created or rotated the token. */
  secret?: string;
}

export interface User extends Versioned {
  id: string;
  username: string;
  display_name: string;
  must_change_password: boolean;
  enabled: boolean;
  role: Role;
  /** A spend budget over all the user's tokens together. */
  budget?: Budget | null;
  /** Glob patterns over model aliases the user's tokens may call; empty allows every model. */
  allowed_models?: string[];
}

export interface AuditEntry {
  stream: string;
  sequence: number;
  event_id: string;
  occurred_at: string | null;
  type: string;
  actor_id: string | null;
  actor: string | null;
  entity: string | null;
  entity_id: string | null;
  before: unknown;
  after: unknown;
}

/** One stream's walk of `GET /audit/verify` (admin-api `shared::chain::ChainReport`). */
export interface ChainReport {
  stream: string;
  events: number;
  unchained_before: number;
  chained_from: number | null;
  head_seq: number;
  head_link: string | null;
  gaps: [number, number][];
  checkpoints_checked: number;
  first_broken: { seq: number; reason: string; detail: string } | null;
}

export interface ChainVerification {
  ok: boolean;
  streams: ChainReport[];
}

export interface Money {
  amount: string;
  currency: string;
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface Summary {
  requests: number;
  success: number;
  error: number;
  cancelled: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cost: Money;
  error_rate: number;
  latency_ms: Percentiles;
  ttfb_ms: Percentiles;
  /** What the response cache answered, and what those answers had cost when first made. */
  cache?: { hits: number; saved_input_tokens: number; saved_output_tokens: number; saved_cost: Money };
}

export type Bucket = 'minute' | 'hour' | 'day';

export interface TimePoint {
  t: string;
  requests: number;
  success: number;
  error: number;
  cancelled: number;
  input_tokens: number;
  output_tokens: number;
  cost: string;
  latency_p95_ms: number | null;
}

export interface Timeseries {
  bucket: Bucket;
  points: TimePoint[];
}

export type BreakdownBy = 'model' | 'provider' | 'provider_key' | 'token' | 'user' | 'team' | 'client_protocol' | 'outcome' | 'error_kind';

export interface BreakdownRow {
  key: string;
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cost: string;
  latency_p95_ms: number | null;
}

export interface Breakdown {
  by: BreakdownBy;
  rows: BreakdownRow[];
}

export interface RequestRow {
  occurred_at: string;
  request_id: string;
  token_id: string;
  user_id: string;
  /** The team the token was charged to (absent or null: none). */
  team_id?: string | null;
  model_alias: string;
  provider_id: string;
  upstream_model: string;
  provider_key_id: string;
  client_protocol: string;
  stream: boolean;
  outcome: string;
  error_kind: string | null;
  http_status: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cost: string;
  currency: string;
  latency_ms: number;
  ttfb_ms: number | null;
  attempts: number;
  /** The W3C trace id (32 hex digits): ingress's span when it exports traces, else the client's traceparent. */
  trace_id: string | null;
  /** The price version the request was charged under (null: not priced). */
  price_version: number | null;
  /** The config stream sequence its ingress node had applied (`GET /config/at?seq=`). */
  config_seq: number | null;
  /** Answered by the response cache: no usage or cost of its own; `saved` is what it spared. */
  cache_hit?: boolean;
  saved?: { input_tokens: number; output_tokens: number; cost: string } | null;
  /** The model's routing strategy when it has one (null: weighted, the default). */
  routing_strategy?: RoutingStrategy | null;
  /** Cache affinity: the session's fingerprint (first 16 hex digits of its SHA-256). */
  routing_session?: string | null;
}

/** `GET /config/at?seq=N`: every entity as it stood at config sequence N. */
export interface ConfigAt {
  seq: number;
  last_seq: number;
  event: { seq: number; type: string; entity: string; entity_id: string; occurred_at: string; actor: string | null } | null;
  entities: {
    provider: Provider[];
    provider_key: Array<{ id: string; name: string; provider_id: string; enabled: boolean; last_four?: string; version: number }>;
    model: Model[];
    token: Token[];
    user: Array<{ id: string; username: string; enabled: boolean; version: number }>;
    role_binding: Array<{ user_id: string; role: Role; version: number }>;
    setting: Array<{ key: string; value: unknown; version: number }>;
  };
}

export interface RequestLog {
  rows: RequestRow[];
  total: number;
}

export interface DashboardCards {
  active_providers: number;
  enabled_models: number;
  healthy_keys: number;
  total_keys: number;
  requests_today: number;
  spend_today: Money;
  requests_last_minute: number;
  error_rate_today: number;
  latency_p95_ms_today: number | null;
}

/** One price version of a model (`GET /models/{id}/prices`): its prices and the config event that set them. */
export interface PriceVersion {
  version: number;
  currency: string;
  input_per_million: string;
  output_per_million: string;
  cache_read_per_million: string;
  cache_write_per_million: string;
  /** The config stream sequence of the event that set this version (`GET /config/at?seq=`). */
  since_seq: number;
  since: string;
  by: string | null;
  /** The model's alias when this version was set. */
  alias: string;
}

/** `GET /models/{id}/prices`: every price version of a model, oldest first. */
export interface PriceHistory {
  model_id: string;
  versions: PriceVersion[];
}

export type RerateBy = 'model' | 'token' | 'user' | 'day';

export interface RerateRow {
  key: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  /** What was charged, in `charged_currency` (several joined with "+"; empty when unpriced). */
  charged: string;
  charged_currency: string;
  /** What the requests would have cost at `price`, in its currency. */
  rerated: string;
  /** Re-rated minus charged: positive means the requests would have cost more. */
  difference: string;
}

/** `GET /analytics/rerate`: the filtered requests re-rated at a price version or at given prices. */
export interface Rerate {
  by: RerateBy;
  /** The price re-rated at (version 0 for prices given in the query). */
  price: {
    version: number;
    currency: string;
    input_per_million: string;
    output_per_million: string;
    cache_read_per_million: string;
    cache_write_per_million: string;
  };
  rows: RerateRow[];
  total: { requests: number; charged: string; rerated: string; difference: string };
}
