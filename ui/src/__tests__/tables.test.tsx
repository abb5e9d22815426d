import { useState } from 'react';
import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ProvidersPage } from '../pages/Providers';
import { KeysPage } from '../pages/Keys';
import { ModelsPage } from '../pages/Models';
import { TokensPage } from '../pages/Tokens';
import { UsagePage, RequestLogTable } from '../pages/Usage';
import { DashboardPage } from '../pages/Dashboard';
import { AuditDiff, ChainBadge } from '../pages/Audit';
import { ConfigAtDrawer } from '../components/ConfigAt';
import { dashboard, keys, model, provider, requestRow, summary, token } from '../test/fixtures';
import { mockApi, page, renderWith } from '../test/utils';

const configRoutes = {
  'GET /api/v1/providers': page([provider]),
  'GET /api/v1/provider-keys': page(keys),
  'GET /api/v1/models': page([model]),
  'GET /api/v1/tokens': page([token]),
  'GET /api/v1/users': page([
    { id: 'admin-id', username: 'admin', display_name: '', role: 'admin', enabled: true, must_change_password: false, version: 1 },
  ]),
  'GET /api/v1/analytics/breakdown': (url: URL) => ({
    by: url.searchParams.get('by'),
    rows: [
      {
        key: url.searchParams.get('by') === 'token' ? 't1' : 'gpt-test',
        requests: 42,
        errors: 2,
        input_tokens: 1234,
        output_tokens: 5678,
        cost: '0.123456',
        latency_p95_ms: 480,
      },
    ],
  }),
  'GET /api/v1/analytics/requests': { rows: [requestRow], total: 1 },
  'GET /api/v1/analytics/summary': summary,
  'GET /api/v1/analytics/timeseries': {
    bucket: 'hour',
    points: [
      {
        t: '2026-11-26T06:00:00Z',
        requests: 42,
        success: 40,
        error: 2,
        cancelled: 0,
        input_tokens: 1234,
        output_tokens: 5678,
        cost: '0.123456',
        latency_p95_ms: 480,
      },
    ],
  },
  'GET /api/v1/dashboard': dashboard,
};

describe('ProvidersPage', () => {
  it('lists providers with key count and health, and offers edits to an admin', async () => {
    mockApi(configRoutes);
    renderWith(<ProvidersPage />, { role: 'admin' });
    const row = (await screen.findByText('Mock upstream')).closest('tr')!;
    expect(within(row).getByText('http://127.0.0.1:9100/v1')).toBeInTheDocument();
    expect(await within(row).findByText('1 of 2 healthy')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: /new provider/i })).toBeInTheDocument();
    expect(within(row).getByRole('button', { name: 'Edit' })).toBeInTheDocument();
    expect(within(row).getByRole('button', { name: 'Delete' })).toBeInTheDocument();
    expect(within(row).getByRole('switch')).not.toBeDisabled();
  });

  it('shows a viewer no edit buttons', async () => {
    mockApi(configRoutes);
    renderWith(<ProvidersPage />, { role: 'viewer' });
    const row = (await screen.findByText('Mock upstream')).closest('tr')!;
    expect(screen.queryByRole('button', { name: /new provider/i })).toBeNull();
    expect(within(row).queryByRole('button', { name: 'Edit' })).toBeNull();
    expect(within(row).queryByRole('button', { name: 'Delete' })).toBeNull();
    expect(within(row).getByRole('switch')).toBeDisabled();
  });

  it('sends the version read when a switch changes', async () => {
    const fetchMock = mockApi({ ...configRoutes, 'PATCH /api/v1/providers/mock': { ...provider, enabled: false, version: 4 } });
    renderWith(<ProvidersPage />, { role: 'operator' });
    const row = (await screen.findByText('Mock upstream')).closest('tr')!;
    fireEvent.click(within(row).getByRole('switch'));
    await waitFor(() => expect(fetchMock.mock.calls.some(([, init]) => init?.method === 'PATCH')).toBe(true));
    const call = fetchMock.mock.calls.find(([, init]) => init?.method === 'PATCH')!;
    expect(JSON.parse(String(call[1]!.body))).toEqual({ enabled: false, version: 3 });
  });

  it('shows the API error when the list fails', async () => {
    mockApi({
      'GET /api/v1/providers': new Response(JSON.stringify({ error: { code: 'forbidden', message: 'not allowed here', field: null } }), {
        status: 403,
      }),
    });
    renderWith(<ProvidersPage />, { role: 'admin' });
    expect(await screen.findByText('not allowed here (forbidden)')).toBeInTheDocument();
  });
});

describe('KeysPage', () => {
  it('shows keys only masked, with health and last error', async () => {
    mockApi(configRoutes);
    renderWith(<KeysPage />, { role: 'admin' });
    expect(await screen.findByText('••••abcd')).toBeInTheDocument();
    expect(screen.getByText('••••wxyz')).toBeInTheDocument();
    expect(screen.getByText('healthy')).toBeInTheDocument();
    expect(screen.getByText('failing')).toBeInTheDocument();
    expect(screen.getByText('upstream answered 401 Unauthorized')).toBeInTheDocument();
    expect(screen.getAllByRole('button', { name: /test/i })).toHaveLength(2);
  });

  it('shows the result of a key test', async () => {
    mockApi({
      ...configRoutes,
      'POST /api/v1/provider-keys/k1/test': { health_recorded: true, ok: true, status: 200, latency_ms: 12, error: null, key: keys[0] },
    });
    renderWith(<KeysPage />, { role: 'operator' });
    const row = (await screen.findByText('••••abcd')).closest('tr')!;
    fireEvent.click(within(row).getByRole('button', { name: /test/i }));
    expect(await screen.findByText('The key works: HTTP 200 in 12 ms')).toBeInTheDocument();
  });
});

describe('ModelsPage', () => {
  it('lists aliases with routes and prices', async () => {
    mockApi(configRoutes);
    renderWith(<ModelsPage />, { role: 'viewer' });
    expect(await screen.findByText('gpt-test')).toBeInTheDocument();
    expect(screen.getByText('gpt-4.1')).toBeInTheDocument();
    expect(screen.getByText('2 / 8 USD')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /new model/i })).toBeNull();
  });
});

describe('TokensPage', () => {
  it('shows each token with requests and spend today', async () => {
    mockApi(configRoutes);
    renderWith(<TokensPage />, { role: 'admin' });
    const row = (await screen.findByText('CI pipeline')).closest('tr')!;
    expect(within(row).getByText('axg-…Zz9q')).toBeInTheDocument();
    expect(await within(row).findByText('42')).toBeInTheDocument();
    expect(within(row).getByText('0.123456 USD')).toBeInTheDocument();
    expect(within(row).getByRole('button', { name: 'Rotate' })).toBeInTheDocument();
    expect(within(row).getByRole('button', { name: 'Revoke' })).toBeInTheDocument();
  });

  it('shows a member their own tokens without an owner column', async () => {
    mockApi(configRoutes);
    renderWith(<TokensPage />, { role: 'member' });
    await screen.findByText('CI pipeline');
    expect(screen.queryByRole('columnheader', { name: 'Owner' })).toBeNull();
    expect(screen.getByRole('button', { name: /new token/i })).toBeInTheDocument();
  });
});

describe('Usage', () => {
  it('shows the summary, percentiles and the request log from the API', async () => {
    const fetchMock = mockApi(configRoutes);
    renderWith(<UsagePage />, { role: 'admin' });
    expect(await screen.findByTestId('usage-requests')).toHaveTextContent('42');
    expect(screen.getByTestId('usage-cost')).toHaveTextContent('0.123456 USD');
    expect(screen.getByTestId('usage-cache-hits')).toHaveTextContent('7 · 0.0042 USD');
    expect(screen.getByTestId('latency-p95')).toHaveTextContent('480 ms');
    expect(await screen.findByText('req-1', {}, { timeout: 1 }).catch(() => null)).toBeNull(); // the id is in the expanded row only
    expect(await screen.findByText('CI pipeline', { selector: 'td' })).toBeInTheDocument();
    const summaryCall = fetchMock.mock.calls
      .map(([url]) => new URL(String(url), 'http://x'))
      .find((url) => url.pathname.endsWith('/analytics/summary'))!;
    expect(summaryCall.searchParams.get('from')).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(summaryCall.searchParams.get('to')).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('request log table pages through the total', async () => {
    const rows = Array.from({ length: 3 }, (_, index) => ({ ...requestRow, request_id: `req-${index}` }));
    let paged: number[] = [];
    renderWith(
      <RequestLogTable
        rows={rows}
        total={95}
        page={{ current: 1, pageSize: 3 }}
        onPage={(current, size) => {
          paged = [current, size];
        }}
      />,
    );
    expect(screen.getByText('95 in total')).toBeInTheDocument();
    fireEvent.click(screen.getByTitle('2'));
    expect(paged).toEqual([2, 3]);
    expect(screen.getAllByText('gpt-test')).toHaveLength(3);
  });

  it('request log shows the trace id, short in the row and whole in the detail', async () => {
    const untraced = { ...requestRow, request_id: 'req-untraced', trace_id: null };
    renderWith(<RequestLogTable rows={[requestRow, untraced]} total={2} page={{ current: 1, pageSize: 20 }} onPage={() => undefined} />);
    expect(screen.getByTitle('4bf92f3577b34da6a3ce929d0e0e4736')).toHaveTextContent('4bf92f35');
    fireEvent.click(screen.getAllByRole('button', { name: /expand row/i })[0]);
    expect(await screen.findByTestId('trace-id')).toHaveTextContent('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});

describe('ConfigAtDrawer', () => {
  it('opens from a request to the config it was served under: routes, prices and limits at that sequence', async () => {
    const fetchMock = mockApi({
      'GET /api/v1/config/at': (url: URL) => ({
        seq: Number(url.searchParams.get('seq')),
        last_seq: 50,
        event: { seq: 42, type: 'model.put', entity: 'model', entity_id: 'gpt', occurred_at: '2026-11-26T06:00:00Z', actor: 'admin' },
        entities: {
          provider: [provider],
          provider_key: [],
          model: [{ ...model, price: { currency: 'USD', input_per_million: '2.5', output_per_million: '10', version: 3 } }],
          token: [{ ...token, rpm: 60, tpm: null, budget: { amount: '5', currency: 'USD', period: 'daily' } }],
          user: [],
          role_binding: [],
          setting: [],
        },
      }),
    });
    function Log() {
      const [seq, setSeq] = useState<number | null>(null);
      return (
        <>
          <RequestLogTable rows={[requestRow]} total={1} page={{ current: 1, pageSize: 20 }} onPage={() => undefined} onConfig={setSeq} />
          <ConfigAtDrawer seq={seq} onClose={() => setSeq(null)} />
        </>
      );
    }
    renderWith(<Log />);
    fireEvent.click(screen.getAllByRole('button', { name: /expand row/i })[0]);
    fireEvent.click(await screen.findByTestId('config-seq'));
    expect(await screen.findByText('Config at sequence 42')).toBeInTheDocument();
    expect(await screen.findByText('2.5 / 10 USD (v3)')).toBeInTheDocument();
    expect(screen.getByText('5 USD / daily')).toBeInTheDocument();
    expect(screen.getByText('8 config events came after this one')).toBeInTheDocument();
    expect(fetchMock.mock.calls.some(([url]) => String(url).includes('/api/v1/config/at?seq=42'))).toBe(true);
  });

  it('offers no config link when the caller may not read the config', async () => {
    renderWith(<RequestLogTable rows={[requestRow]} total={1} page={{ current: 1, pageSize: 20 }} onPage={() => undefined} />);
    fireEvent.click(screen.getAllByRole('button', { name: /expand row/i })[0]);
    expect(await screen.findByText('42')).toBeInTheDocument();
    expect(screen.queryByTestId('config-seq')).toBeNull();
  });
});

describe('DashboardPage', () => {
  it('shows every card from the dashboard endpoint', async () => {
    mockApi(configRoutes);
    renderWith(<DashboardPage />, { role: 'viewer' });
    expect(await screen.findByTestId('card-requests-today')).toHaveTextContent('1,234');
    expect(screen.getByTestId('card-active-providers')).toHaveTextContent('2');
    expect(screen.getByTestId('card-enabled-models')).toHaveTextContent('3');
    expect(screen.getByTestId('card-healthy-keys')).toHaveTextContent('4 / 5');
    expect(screen.getByTestId('card-spend-today')).toHaveTextContent('12.50 USD');
    expect(screen.getByTestId('card-error-rate')).toHaveTextContent('2.5%');
    expect(screen.getByTestId('card-p95')).toHaveTextContent('480 ms');
    expect(screen.getByTestId('card-last-minute')).toHaveTextContent('7');
  });
});

describe('AuditDiff', () => {
  it('shows each changed field before and after', () => {
    renderWith(
      <AuditDiff
        entry={{
          stream: 'AXONGATE_CONFIG',
          sequence: 9,
          event_id: 'e',
          occurred_at: null,
          type: 'provider.put',
          actor_id: 'admin',
          actor: 'admin',
          entity: 'provider',
          entity_id: 'mock',
          before: { name: 'Old', enabled: true, timeouts: { connect_ms: 5000 } },
          after: { name: 'New', enabled: true, timeouts: { connect_ms: 2000 } },
        }}
      />,
    );
    expect(screen.getByText('name')).toBeInTheDocument();
    expect(screen.getByText('Old')).toBeInTheDocument();
    expect(screen.getByText('New')).toBeInTheDocument();
    expect(screen.getByText('timeouts.connect_ms')).toBeInTheDocument();
    expect(screen.queryByText('enabled')).toBeNull();
  });
});

describe('ChainBadge', () => {
  const report = (stream: string, events: number, firstBroken: unknown = null) => ({
    stream,
    events,
    unchained_before: 0,
    chained_from: 1,
    head_seq: events,
    head_link: 'ab'.repeat(32),
    gaps: [],
    checkpoints_checked: 1,
    first_broken: firstBroken,
  });

  it('shows a whole chain with its event count, and the first broken link when there is one', async () => {
    let broken = false;
    const fetchMock = mockApi({
      'GET /api/v1/audit/verify': () =>
        broken
          ? {
              ok: false,
              streams: [
                report('AXONGATE_CONFIG', 7, { seq: 4, reason: 'missing_predecessor', detail: 'event 4 follows…' }),
                report('AXONGATE_AUDIT', 5),
              ],
            }
          : { ok: true, streams: [report('AXONGATE_CONFIG', 7), report('AXONGATE_AUDIT', 5)] },
    });
    renderWith(<ChainBadge />, { role: 'viewer' });
    expect(await screen.findByTestId('chain-whole')).toHaveTextContent('Chain verified: 12 events');
    broken = true;
    fireEvent.click(screen.getByRole('button', { name: /verify again/i }));
    expect(await screen.findByTestId('chain-broken')).toHaveTextContent('Chain broken in AXONGATE_CONFIG at event 4 (missing_predecessor)');
    expect(fetchMock.mock.calls.filter(([url]) => String(url).includes('/audit/verify'))).toHaveLength(2);
  });
});
