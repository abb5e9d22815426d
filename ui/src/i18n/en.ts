const en = {
  app: { title: 'AxonGate', signOut: 'Sign out', language: 'Language', loading: 'Loading…' },
  nav: {
    dashboard: 'Dashboard', providers: 'Providers', keys: 'Provider keys', models: 'Models', tokens: 'User tokens',
    usage: 'Usage', audit: 'Audit log', users: 'Users and roles', profile: 'Profile and settings',
  },
  common: {
    create: 'Create', edit: 'Edit', delete: 'Delete', save: 'Save', cancel: 'Cancel', close: 'Close', actions: 'Actions',
    enabled: 'Enabled', disabled: 'Disabled', yes: 'Yes', no: 'No', name: 'Name', id: 'ID', refresh: 'Refresh',
    confirmDelete: 'Delete {{name}}? This cannot be undone.', saved: 'Saved', deleted: 'Deleted', none: '—',
    search: 'Search', total: '{{count}} in total', all: 'All', copy: 'Copy', copied: 'Copied', updatedAt: 'Updated',
    error: 'Error', unlimited: 'unlimited', never: 'never',
  },
  login: {
    title: 'Sign in to AxonGate', username: 'Username', password: 'Password', submit: 'Sign in',
    changeTitle: 'Choose a new password', changeHint: 'This is your first sign-in (or your password was reset): choose a new password to continue.',
    current: 'Current password', newPassword: 'New password', confirm: 'Repeat the new password', mismatch: 'The passwords differ',
    minLength: 'At least 8 characters', changeSubmit: 'Change password', changed: 'Password changed',
  },
  dashboard: {
    activeProviders: 'Active providers', enabledModels: 'Enabled models', healthyKeys: 'Healthy keys', requestsToday: 'Requests today',
    spendToday: 'Spend today', errorRate: 'Error rate today', p95: 'p95 latency today', lastMinute: 'Requests in the last minute',
    overTime: 'Requests and cost over time', topModels: 'Top models', errorsByKind: 'Errors by kind', autoRefresh: 'Auto-refresh',
    off: 'Off', noErrors: 'No errors in this range',
  },
  range: { last1h: 'Last hour', last24h: 'Last 24 hours', last7d: 'Last 7 days', last30d: 'Last 30 days', today: 'Today' },
  providers: {
    title: 'Providers', new: 'New provider', protocol: 'Protocol', baseUrl: 'Base URL', keys: 'Keys', health: 'Key health',
    allowPrivate: 'Allow private network', allowPrivateHelp: 'Needed for a base URL on a private or loopback address',
    reenterSecrets: 'This changes where the provider sends its keys. Only an admin may do that without them: enter each key\'s secret again.',
    secretOf: 'Secret of key {{name}}',
    extraHeaders: 'Extra headers', headerName: 'Header', headerValue: 'Value', addHeader: 'Add header', timeouts: 'Timeouts (ms)',
    connect: 'Connect', firstByte: 'First byte', idle: 'Idle', totalTimeout: 'Total', healthyOf: '{{healthy}} of {{total}} healthy',
    noKeys: 'no keys', protocolOpenai: 'OpenAI Chat Completions (and compatible)', protocolResponses: 'OpenAI Responses', protocolAnthropic: 'Anthropic Messages', baseUrlHelp: 'Includes the version prefix, e.g. https://api.openai.com/v1',
  },
  keys: {
    title: 'Provider keys', new: 'Add key', provider: 'Provider', secret: 'Secret', secretHelp: 'Entered once, stored encrypted and never shown again',
    newSecret: 'New secret (optional)', newSecretHelp: 'Leave empty to keep the current secret', masked: 'Key', test: 'Test',
    testOk: 'The key works: HTTP {{status}} in {{latency}} ms', testFailed: 'The key test failed: {{error}}', health: 'Health',
    healthy: 'healthy', failing: 'failing', untested: 'untested', lastSuccess: 'Last success', lastError: 'Last error',
    lastStatus: 'Last status', latency: 'Latency',
  },
  models: {
    title: 'Models', new: 'New model', alias: 'Alias', aliasHelp: 'The name clients send as `model`', routes: 'Routes', price: 'Price per million tokens',
    provider: 'Provider', upstreamModel: 'Upstream model', priority: 'Priority', weight: 'Weight', keyIds: 'Keys (empty: all)',
    addRoute: 'Add route', currency: 'Currency', input: 'Input', output: 'Output', cacheRead: 'Cache read', cacheWrite: 'Cache write',
    contextWindow: 'Context window', noPrice: 'no price', routeCount: '{{count}} routes',
    retry: 'Retries and circuit breaker', retryHelp: 'Empty fields take the ingress defaults (4 attempts, a key benched for 30 s after 5 failures in a row).',
    maxAttempts: 'Attempts at most', retryOn: 'Statuses retried', retryOnHelp: 'Comma-separated, e.g. 429, 500, 503. Empty: 401, 403, 408, 409, 429 and 5xx.',
    breakerFailures: 'Failures that bench a key', breakerCooldown: 'Bench time (s)', benchWhenAllOpen: 'Refuse when every key is benched',
    benchWhenAllOpenHelp: 'Off: when every key is benched they are tried anyway. On: the client gets the last upstream error with Retry-After.',
  },
  tokens: {
    title: 'User tokens', new: 'New token', owner: 'Owner', allowedModels: 'Allowed models', allowedHelp: 'Patterns like gpt-*; empty allows every model',
    limits: 'Limits (RPM / TPM)', rpm: 'Requests / min', tpm: 'Tokens / min', budget: 'Budget', period: 'Period', amount: 'Amount', expires: 'Expires',
    lastUsed: 'Last used', requestsToday: 'Requests today', spendToday: 'Spend today', rotate: 'Rotate', revoke: 'Revoke',
    confirmRotate: 'Rotate {{name}}? The current secret stops working.', confirmRevoke: 'Revoke {{name}}? Requests with it will be refused.',
    secretTitle: 'Your new token', secretOnce: 'Copy the token now: it is shown only once.', gatewayUrl: 'Gateway URL',
    revoked: 'Token revoked', periods: { daily: 'daily', weekly: 'weekly', monthly: 'monthly', total: 'total' }, token: 'Token', mine: 'me',
  },
  usage: {
    title: 'Usage', model: 'Model', provider: 'Provider', token: 'Token', user: 'User', outcome: 'Outcome', requests: 'Requests',
    errors: 'Errors', inputTokens: 'Input tokens', outputTokens: 'Output tokens', cost: 'Cost', latency: 'Latency', ttfb: 'Time to first byte',
    errorRate: 'Error rate', breakdown: 'Breakdown', by: 'By', timeseries: 'Over time', log: 'Request log', exportCsv: 'Export CSV',
    time: 'Time', status: 'Status', stream: 'Stream', attempts: 'Attempts', errorKind: 'Error kind', protocol: 'Client protocol',
    requestId: 'Request id', upstream: 'Upstream model', percentiles: 'Latency percentiles', cancelled: 'Cancelled', success: 'Succeeded',
    noData: 'No requests in this range', cacheTokens: 'Cache tokens (read / write)', key: 'Key',
    byOptions: { model: 'model', provider: 'provider', provider_key: 'provider key', token: 'token', user: 'user', client_protocol: 'client protocol', outcome: 'outcome', error_kind: 'error kind' },
  },
  audit: {
    title: 'Audit log', entity: 'Entity', entityId: 'Entity id', actor: 'Actor', type: 'Event', time: 'Time', changes: 'Changes',
    field: 'Field', before: 'Before', after: 'After', noChanges: 'No field changed',
  },
  users: {
    title: 'Users and roles', new: 'New user', username: 'Username', displayName: 'Display name', role: 'Role', password: 'Password',
    resetPassword: 'New password (optional)', resetHelp: 'The user must change it at the next sign-in', mustChange: 'Must change password',
    roles: { admin: 'admin', operator: 'operator', viewer: 'viewer', member: 'member' },
  },
  profile: { title: 'Profile and settings', account: 'Account', changePassword: 'Change password', languageHelp: 'Stored in this browser' },
};

export default en;
export type Messages = typeof en;
