import { fireEvent, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { LimitsPage, rateLimitsOf, spendAlertsOf } from '../pages/Limits';
import { model } from '../test/fixtures';
import { mockApi, page, renderWith } from '../test/utils';

const stored = {
  id: 'rate_limits',
  key: 'rate_limits',
  version: 4,
  value: {
    per_user: { rpm: 600 },
    users: { 'u-ann': { rpm: 5, tpm: 1000 } },
    models: { 'gpt-test': { tpm: 2000000 } },
  },
};

const users = page([
  { id: 'u-ann', username: 'ann', display_name: '', must_change_password: false, enabled: true, role: 'member', version: 1 },
]);

describe('LimitsPage', () => {
  it('shows the stored limits and saves a change with the version read', async () => {
    const puts: unknown[] = [];
    mockApi({
      'GET /api/v1/settings/rate_limits': stored,
      'GET /api/v1/users': users,
      'GET /api/v1/models': page([model]),
      'PUT /api/v1/settings/rate_limits': (_url: URL, init: RequestInit) => {
        puts.push(JSON.parse(String(init.body)));
        return { ...stored, version: 5 };
      },
    });
    renderWith(<LimitsPage />, { role: 'operator' });
    expect(await screen.findByLabelText('per_user-rpm')).toHaveValue('600');
    expect(screen.getByLabelText('user-0-rpm')).toHaveValue('5');
    expect(screen.getByLabelText('user-0-tpm')).toHaveValue('1000');
    expect(screen.getByLabelText('model-0-tpm')).toHaveValue('2000000');
    fireEvent.change(screen.getByLabelText('per_address-rpm'), { target: { value: '120' } });
    fireEvent.change(screen.getByLabelText('per_user-rpm'), { target: { value: '' } });
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(puts).toHaveLength(1));
    expect(puts[0]).toEqual({
      version: 4,
      value: {
        per_address: { rpm: 120 },
        users: { 'u-ann': { rpm: 5, tpm: 1000 } },
        models: { 'gpt-test': { tpm: 2000000 } },
      },
    });
  });

  it('is read-only for a viewer, and empty when nothing is set', async () => {
    mockApi({ 'GET /api/v1/users': users, 'GET /api/v1/models': page([model]) });
    renderWith(<LimitsPage />, { role: 'viewer' });
    expect(await screen.findByLabelText('per_user-rpm')).toBeDisabled();
    expect(screen.getByLabelText('per_user-rpm')).toHaveValue('');
    expect(screen.queryByRole('button', { name: 'Save' })).toBeNull();
    expect(screen.queryByRole('button', { name: /Add a user/ })).toBeNull();
  });

  it('saves spend alerts from the admin', async () => {
    const puts: unknown[] = [];
    mockApi({
      'GET /api/v1/users': users,
      'GET /api/v1/models': page([model]),
      'PUT /api/v1/settings/spend_alerts': (_url: URL, init: RequestInit) => {
        puts.push(JSON.parse(String(init.body)));
        return { value: {}, version: 1 };
      },
    });
    renderWith(<LimitsPage />, { role: 'admin' });
    fireEvent.change(await screen.findByLabelText('alert-thresholds'), { target: { value: '75, 100%' } });
    fireEvent.change(screen.getByLabelText('alert-webhook_url'), { target: { value: ' https://hooks.example.com/a ' } });
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save alerts' }));
    await waitFor(() => expect(puts).toHaveLength(1));
    expect(puts[0]).toEqual({ value: { thresholds: [75, 100], webhook_url: 'https://hooks.example.com/a' } });
  });

  it('shows spend alerts read-only to an operator', async () => {
    mockApi({
      'GET /api/v1/users': users,
      'GET /api/v1/models': page([model]),
      'GET /api/v1/settings/spend_alerts': { value: { thresholds: [90] }, version: 2 },
    });
    renderWith(<LimitsPage />, { role: 'operator' });
    await waitFor(() => expect(screen.getByLabelText('alert-thresholds')).toHaveValue('90'));
    expect(screen.getByLabelText('alert-thresholds')).toBeDisabled();
    expect(screen.queryByRole('button', { name: 'Save alerts' })).toBeNull();
  });

  it('leaves out what is not set', () => {
    expect(spendAlertsOf({ thresholds: '50 80', webhook_url: '', allow_private_network: true })).toEqual({ thresholds: [50, 80] });
    expect(
      rateLimitsOf({
        per_user: { rpm: null, tpm: null },
        per_address: { rpm: null, tpm: 50 },
        users: [{ id: 'u1', rpm: null, tpm: null }],
        models: [{ alias: 'm', rpm: 3, tpm: null }],
      }),
    ).toEqual({ per_address: { tpm: 50 }, models: { m: { rpm: 3 } } });
  });
});
