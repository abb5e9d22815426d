import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import dayjs from 'dayjs';
import { describe, expect, it, vi } from 'vitest';
import { ModelsPage } from '../pages/Models';
import { PriceHistoryDrawer } from '../components/Rerate';
import type { Model, Rerate } from '../api/types';
import { formatTime } from '../format';
import { model, priceHistory, provider, token } from '../test/fixtures';
import { mockApi, page, renderWith } from '../test/utils';

/** The model at its latest price version (3), as the models list gives it. */
const current: Model = { ...model, price: { ...model.price!, input_per_million: '3.1', output_per_million: '12.7', version: 3 } };

const byModel: Rerate = {
  by: 'model',
  price: {
    version: 2,
    currency: 'USD',
    input_per_million: '2.5',
    output_per_million: '10',
    cache_read_per_million: '1.25',
    cache_write_per_million: '0',
  },
  rows: [
    {
      key: 'gpt-test',
      requests: 6,
      input_tokens: 1234,
      output_tokens: 200,
      cache_read_tokens: 10,
      cache_write_tokens: 0,
      charged: '0.0123',
      charged_currency: 'USD',
      rerated: '0.0156',
      difference: '0.0033',
    },
  ],
  total: { requests: 6, charged: '0.0123', rerated: '0.0156', difference: '0.0033' },
};

const byToken: Rerate = {
  ...byModel,
  by: 'token',
  rows: [
    {
      key: 't1',
      requests: 4,
      input_tokens: 1000,
      output_tokens: 150,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      charged: '0.02',
      charged_currency: 'USD',
      rerated: '0.015',
      difference: '-0.005',
    },
    {
      key: 'tok-other',
      requests: 2,
      input_tokens: 234,
      output_tokens: 50,
      cache_read_tokens: 10,
      cache_write_tokens: 0,
      charged: '0.0123',
      charged_currency: 'USD',
      rerated: '0.0156',
      difference: '0.0033',
    },
  ],
  total: { requests: 6, charged: '0.0323', rerated: '0.0306', difference: '-0.0017' },
};

const routes = {
  'GET /api/v1/models': page([current]),
  'GET /api/v1/providers': page([provider]),
  'GET /api/v1/tokens': page([token]),
  'GET /api/v1/models/m1/prices': priceHistory,
  'GET /api/v1/analytics/rerate': (url: URL) => (url.searchParams.get('by') === 'token' ? byToken : byModel),
};

type FetchMock = ReturnType<typeof mockApi>;

const callsTo = (fetchMock: FetchMock, path: string) =>
  fetchMock.mock.calls.map(([url]) => new URL(String(url), 'http://localhost')).filter((url) => url.pathname === path);

const cells = (row: Element) => [...row.querySelectorAll('td')].map((cell) => cell.textContent);

const dataRows = (container: HTMLElement) => [...container.querySelectorAll('tbody tr.ant-table-row')];

/** Opens the drawer on the model and re-rates it at `version`. */
async function rerateAt(version: number) {
  renderWith(<PriceHistoryDrawer model={current} onClose={() => undefined} />, { role: 'admin' });
  const history = await screen.findByTestId('price-history');
  await waitFor(() => expect(dataRows(history)).toHaveLength(3));
  const row = dataRows(history).find((candidate) => candidate.querySelector('td')!.textContent!.startsWith(`v${version}`))!;
  fireEvent.click(within(row as HTMLElement).getByRole('button', { name: 'Re-rate at this version' }));
  return screen.findByTestId('rerate');
}

describe('PriceHistoryDrawer', () => {
  it('opens from the models page and lists the versions newest first', async () => {
    const fetchMock = mockApi(routes);
    renderWith(<ModelsPage />, { role: 'viewer' });
    const row = (await screen.findByText('gpt-test')).closest('tr')!;
    expect(within(row).queryByRole('button', { name: 'Edit' })).toBeNull();
    fireEvent.click(within(row).getByRole('button', { name: /prices/i }));
    expect(await screen.findByText('Price history of gpt-test')).toBeInTheDocument();
    const history = await screen.findByTestId('price-history');
    await waitFor(() => expect(dataRows(history)).toHaveLength(3));
    expect(dataRows(history).map(cells)).toEqual([
      ['v3current', '3.1 USD', '12.7 USD', '0.33 USD', '0.2 USD', formatTime('2026-12-03T08:30:02Z'), '—', '30', 'Re-rate at this version'],
      ['v2', '2.5 USD', '10 USD', '1.25 USD', '0 USD', formatTime('2026-11-24T10:15:00Z'), 'operator', '12', 'Re-rate at this version'],
      ['v1', '2 USD', '8 USD', '0.5 USD', '0 USD', formatTime('2026-11-20T09:00:00Z'), 'admin', '5', 'Re-rate at this version'],
    ]);
    expect(callsTo(fetchMock, '/api/v1/models/m1/prices')).toHaveLength(1);
    // Nothing is re-rated until a version is chosen.
    expect(callsTo(fetchMock, '/api/v1/analytics/rerate')).toHaveLength(0);
    expect(screen.queryByTestId('rerate')).toBeNull();
  });
});

describe('RerateTable', () => {
  it('re-rates the model at the chosen version over the last 7 days and shows charged, re-rated and difference', async () => {
    const fetchMock = mockApi(routes);
    const card = await rerateAt(2);
    expect(within(card).getByText('Re-rating gpt-test at price version 2')).toBeInTheDocument();
    await waitFor(() => expect(callsTo(fetchMock, '/api/v1/analytics/rerate')).toHaveLength(1));
    const params = callsTo(fetchMock, '/api/v1/analytics/rerate')[0].searchParams;
    expect(params.get('model')).toBe('gpt-test');
    expect(params.get('version')).toBe('2');
    expect(params.get('by')).toBe('model');
    expect(params.has('input_per_million')).toBe(false);
    expect(params.has('output_per_million')).toBe(false);
    expect(dayjs(params.get('to')).diff(dayjs(params.get('from')), 'day', true)).toBe(7);
    expect(Math.abs(dayjs(params.get('to')).diff(dayjs()))).toBeLessThan(60_000);

    await waitFor(() => expect(dataRows(card)).toHaveLength(1));
    expect(cells(dataRows(card)[0])).toEqual(['gpt-test', '6', '1,234', '200', '0.0123 USD', '0.0156 USD', '+0.0033 USD']);
    // Re-rating costs more here: the difference is red.
    expect(within(dataRows(card)[0] as HTMLElement).getByText('+0.0033 USD')).toHaveClass('ant-typography-danger');
    expect(within(card).getByTestId('rerate-total-charged')).toHaveTextContent('0.0123 USD');
    expect(within(card).getByTestId('rerate-total-rerated')).toHaveTextContent('0.0156 USD');
    expect(within(card).getByTestId('rerate-total-difference')).toHaveTextContent('+0.0033 USD');
    expect(within(card).getByTestId('rerate-price')).toHaveTextContent(
      'Re-rated at version 2: input 2.5, output 10, cache read 1.25, cache write 0 USD per million tokens',
    );
  });

  it('re-queries with the new grouping when "by" changes, keeping the range and version', async () => {
    const fetchMock = mockApi(routes);
    const card = await rerateAt(2);
    await waitFor(() => expect(dataRows(card)).toHaveLength(1));
    fireEvent.mouseDown(within(card).getByRole('combobox', { name: 'rerate-by' }));
    await waitFor(() => expect(document.querySelector('.ant-select-item-option[title="Token"]')).not.toBeNull());
    fireEvent.click(document.querySelector('.ant-select-item-option[title="Token"]')!);

    await waitFor(() => expect(callsTo(fetchMock, '/api/v1/analytics/rerate')).toHaveLength(2));
    const [first, second] = callsTo(fetchMock, '/api/v1/analytics/rerate').map((url) => url.searchParams);
    expect(second.get('by')).toBe('token');
    for (const name of ['model', 'version', 'from', 'to']) expect(second.get(name)).toBe(first.get(name));

    await waitFor(() => expect(dataRows(card)).toHaveLength(2));
    expect(within(card).getByRole('columnheader', { name: 'Token' })).toBeInTheDocument();
    // Token ids are shown by name where the token list knows them.
    await waitFor(() => expect(cells(dataRows(card)[0])[0]).toBe('CI pipeline'));
    expect(cells(dataRows(card)[0])).toEqual(['CI pipeline', '4', '1,000', '150', '0.02 USD', '0.015 USD', '-0.005 USD']);
    expect(cells(dataRows(card)[1])).toEqual(['tok-other', '2', '234', '50', '0.0123 USD', '0.0156 USD', '+0.0033 USD']);
    // Cheaper at this version: green.
    expect(within(dataRows(card)[0] as HTMLElement).getByText('-0.005 USD')).toHaveClass('ant-typography-success');
    expect(within(card).getByTestId('rerate-total-charged')).toHaveTextContent('0.0323 USD');
    expect(within(card).getByTestId('rerate-total-rerated')).toHaveTextContent('0.0306 USD');
    expect(within(card).getByTestId('rerate-total-difference')).toHaveTextContent('-0.0017 USD');
    expect(within(card).getByTestId('rerate-total-difference')).toHaveClass('ant-typography-success');
  });

  it('shows a 400 from the API as an error', async () => {
    mockApi({
      ...routes,
      'GET /api/v1/analytics/rerate': () =>
        new Response(
          JSON.stringify({ error: { code: 'invalid_field', message: 'model gpt-test never had price version 2', field: 'version' } }),
          { status: 400, headers: { 'content-type': 'application/json' } },
        ),
    });
    const card = await rerateAt(2);
    const alert = await within(card).findByRole('alert');
    expect(alert).toHaveTextContent('model gpt-test never had price version 2 (invalid_field)');
    expect(within(card).queryByTestId('rerate-total-charged')).toBeNull();
    expect(dataRows(card)).toHaveLength(0);
  });

  it('downloads the CSV with the same parameters', async () => {
    const fetchMock = mockApi({
      ...routes,
      'GET /api/v1/analytics/rerate.csv': () => new Response('model,requests\ngpt-test,6\n', { headers: { 'content-type': 'text/csv' } }),
    });
    URL.createObjectURL = vi.fn(() => 'blob:rerate');
    URL.revokeObjectURL = vi.fn();
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(() => undefined);
    const card = await rerateAt(2);
    await waitFor(() => expect(dataRows(card)).toHaveLength(1));
    fireEvent.click(within(card).getByRole('button', { name: /download csv/i }));
    await waitFor(() => expect(click).toHaveBeenCalledTimes(1));
    const [csv] = callsTo(fetchMock, '/api/v1/analytics/rerate.csv');
    const [json] = callsTo(fetchMock, '/api/v1/analytics/rerate');
    expect(csv.search).toBe(json.search);
    expect(csv.searchParams.get('version')).toBe('2');
    expect((click.mock.contexts[0] as HTMLAnchorElement).download).toMatch(/^axongate-rerate-gpt-test-v2-\d{8}-\d{6}\.csv$/);
  });
});
