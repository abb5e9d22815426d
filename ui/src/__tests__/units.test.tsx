import { fireEvent, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ApiError, api, queryString } from '../api/client';
import { canRead, canWrite } from '../auth/permissions';
import { diff } from '../components/diff';
import { bucketFor } from '../components/range';
import { formatMoney } from '../format';
import { LoginPage } from '../pages/Login';
import { setLanguage } from '../i18n';
import { mockApi, renderWith } from '../test/utils';
import dayjs from 'dayjs';

describe('permissions mirror policy.polar', () => {
  it('gives each role what the API allows', () => {
    expect(canWrite('admin', 'user')).toBe(true);
    expect(canWrite('operator', 'provider')).toBe(true);
    expect(canWrite('operator', 'user')).toBe(false);
    expect(canWrite('viewer', 'provider')).toBe(false);
    expect(canWrite('viewer', 'token')).toBe(false);
    expect(canWrite('member', 'token')).toBe(true);
    expect(canRead('member', 'provider')).toBe(false);
    expect(canRead('viewer', 'audit')).toBe(true);
  });
});

describe('api client', () => {
  it('turns the error body into an ApiError', async () => {
    mockApi({
      'POST /api/v1/models': new Response(
        JSON.stringify({ error: { code: 'version_conflict', message: 'stale', field: null, current_version: 8 } }),
        { status: 409 },
      ),
    });
    const error = await api('POST', '/models', {}).catch((caught) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 409, code: 'version_conflict', message: 'stale', currentVersion: 8 });
  });

  it('sends the session as a bearer token', async () => {
    localStorage.setItem('axongate.session', 'axs-abc');
    const fetchMock = mockApi({ 'GET /api/v1/auth/me': { id: 'x' } });
    await api('GET', '/auth/me');
    expect(new Headers(fetchMock.mock.calls[0][1]!.headers).get('Authorization')).toBe('Bearer axs-abc');
  });

  it('leaves empty filters out of the query', () => {
    expect(queryString({ from: 'a', model: undefined, token: '', limit: 50 })).toBe('?from=a&limit=50');
  });
});

describe('helpers', () => {
  it('diffs nested states', () => {
    expect(diff({ a: 1, b: { c: 2 } }, { a: 1, b: { c: 3 }, d: [1] })).toEqual([
      { path: 'b.c', before: 2, after: 3 },
      { path: 'd', before: undefined, after: [1] },
    ]);
    expect(diff(null, { a: 1 })).toEqual([{ path: 'a', before: undefined, after: 1 }]);
  });

  it('shows money fields of events as decimals', async () => {
    const { show } = await import('../components/diff');
    expect(show(2_000_000_000, 'price.input_per_million')).toBe('2');
    expect(show(500_000, 'budget.amount')).toBe('0.0005');
    expect(show(3, 'rpm')).toBe('3');
  });

  it('chooses a bucket by range length', () => {
    const now = dayjs();
    expect(bucketFor(now.subtract(1, 'hour'), now)).toBe('minute');
    expect(bucketFor(now.subtract(1, 'day'), now)).toBe('hour');
    expect(bucketFor(now.subtract(30, 'day'), now)).toBe('day');
  });

  it('formats money from decimal strings', () => {
    expect(formatMoney('12.5', 'USD')).toBe('12.50 USD');
    expect(formatMoney('0.000086', 'USD')).toBe('0.000086 USD');
  });
});

describe('language', () => {
  it('switches between English and Simplified Chinese', async () => {
    renderWith(<LoginPage />, { role: null });
    expect(screen.getByText('Sign in to AxonGate')).toBeInTheDocument();
    setLanguage('zh');
    expect(await screen.findByText('登录 AxonGate')).toBeInTheDocument();
    expect(localStorage.getItem('axongate.language')).toBe('zh');
    setLanguage('en');
    await waitFor(() => expect(screen.getByText('Sign in to AxonGate')).toBeInTheDocument());
  });

  it('shows a failed login in the API words', async () => {
    mockApi({
      'POST /api/v1/auth/login': new Response(
        JSON.stringify({ error: { code: 'invalid_credentials', message: 'wrong username or password', field: null } }),
        { status: 401 },
      ),
    });
    renderWith(<LoginPage />, { role: null });
    fireEvent.change(screen.getByLabelText('Username'), { target: { value: 'admin' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'nope' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('wrong username or password (invalid_credentials)')).toBeInTheDocument();
  });
});

describe('fillBuckets', () => {
  it('adds a zero point for each empty bucket of the range', async () => {
    const { fillBuckets } = await import('../components/charts');
    const point = {
      t: '2026-11-26T07:00:00Z',
      requests: 6,
      success: 6,
      error: 0,
      cancelled: 0,
      input_tokens: 31,
      output_tokens: 48,
      cost: '0.000446',
      latency_p95_ms: 761,
    };
    const filled = fillBuckets([point], 'hour', '2026-11-26T04:30:00Z', '2026-11-26T08:10:00Z');
    expect(filled.map((item) => item.t)).toEqual([
      '2026-11-26T04:00:00.000Z',
      '2026-11-26T05:00:00.000Z',
      '2026-11-26T06:00:00.000Z',
      '2026-11-26T07:00:00Z',
      '2026-11-26T08:00:00.000Z',
    ]);
    expect(filled[3].requests).toBe(6);
    expect(filled[0].requests).toBe(0);
  });
});
