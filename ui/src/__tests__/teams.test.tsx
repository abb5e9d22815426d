import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { Team, User } from '../api/types';
import { canEditTeamMembers, canRead, canWrite } from '../auth/permissions';
import { TokenForm } from '../components/TokenForm';
import { TeamsPage } from '../pages/Teams';
import { TokensPage } from '../pages/Tokens';
import { UsagePage } from '../pages/Usage';
import { UserForm } from '../pages/Users';
import { summary, token } from '../test/fixtures';
import { mockApi, page, renderWith } from '../test/utils';

const ann: User = {
  id: 'u-ann',
  username: 'ann',
  display_name: 'Ann Lee',
  role: 'member',
  enabled: true,
  must_change_password: false,
  version: 1,
};
const bob: User = { ...ann, id: 'u-bob', username: 'bob', display_name: '', version: 2 };

const platform: Team = {
  id: 't-platform',
  name: 'Platform',
  members: [
    { user_id: 'u-ann', role: 'admin', username: 'ann' },
    { user_id: 'u-bob', role: 'member', username: 'bob' },
  ],
  allowed_models: ['gpt-*'],
  budget: { amount: '25.00', currency: 'USD', period: 'monthly' },
  rpm: 600,
  tpm: 200000,
  spend: { amount: '3.1415', currency: 'USD', period: 'monthly', since: '2026-12-01' },
  version: 3,
};

/** Ann as /auth/me gives her: a member of the platform, and its team admin. */
const annSignedIn = { id: 'u-ann', username: 'ann', teams: [{ id: 't-platform', name: 'Platform', role: 'admin' as const }] };
const bobSignedIn = { id: 'u-bob', username: 'bob', teams: [{ id: 't-platform', name: 'Platform', role: 'member' as const }] };

function fill(element: HTMLElement, value: string) {
  fireEvent.change(element, { target: { value } });
}

/**
 * Opens the Select named `label` and picks the option titled `title` from its dropdown, the one
 * open (in tests every Select has the same id, so its listbox cannot be found by id).
 */
async function choose(label: string, title: string) {
  fireEvent.mouseDown(screen.getByRole('combobox', { name: label }));
  const option = await waitFor(() => {
    const open = [...document.querySelectorAll('.ant-select-dropdown:not(.ant-select-dropdown-hidden)')];
    if (open.length !== 1) throw new Error(`${open.length} dropdowns open for ${label}`);
    const found = open[0].querySelector(`.ant-select-item-option[title="${title}"]`);
    if (!found) throw new Error(`no option "${title}" in ${label}: ${open[0].textContent}`);
    return found;
  });
  fireEvent.click(option);
  await waitFor(() => expect(document.querySelectorAll('.ant-select-dropdown:not(.ant-select-dropdown-hidden)')).toHaveLength(0));
}

function bodiesOf(fetchMock: ReturnType<typeof mockApi>, method: string) {
  return fetchMock.mock.calls.filter(([, init]) => init?.method === method).map(([, init]) => JSON.parse(String(init!.body)));
}

describe('team permissions mirror the policy', () => {
  it('lets operators write teams, everyone read them, and a team admin change only its members', () => {
    expect(canWrite('operator', 'team')).toBe(true);
    expect(canWrite('viewer', 'team')).toBe(false);
    expect(canWrite('member', 'team')).toBe(false);
    expect(canRead('viewer', 'team')).toBe(true);
    expect(canRead('member', 'team')).toBe(true);
    const member = { id: 'u-bob', username: 'bob', display_name: '', role: 'member' as const, must_change_password: false };
    expect(canEditTeamMembers(member, platform)).toBe(false);
    expect(canEditTeamMembers({ ...member, teams: [{ id: 't-platform', name: 'Platform', role: 'admin' }] }, { id: 't-platform' })).toBe(
      true,
    );
    expect(canEditTeamMembers({ ...member, id: 'u-ann' }, platform)).toBe(true);
  });
});

describe('TeamsPage', () => {
  it('lists each team with its members, models, limits and spend against budget', async () => {
    mockApi({ 'GET /api/v1/teams': page([platform]), 'GET /api/v1/users': page([ann, bob]) });
    renderWith(<TeamsPage />, { role: 'viewer' });
    const row = (await screen.findByText('Platform')).closest('tr')!;
    expect(within(row).getByText('2 members')).toBeInTheDocument();
    expect(await within(row).findByText('ann · team admin')).toBeInTheDocument();
    expect(within(row).getByText('bob')).toBeInTheDocument();
    expect(within(row).getByText('gpt-*')).toBeInTheDocument();
    expect(within(row).getByText('3.14 / 25.00 USD monthly')).toBeInTheDocument();
    expect(within(row).getByRole('progressbar')).toBeInTheDocument();
    expect(within(row).getByText('12.6%')).toBeInTheDocument();
    expect(within(row).getByText('600 / 200,000')).toBeInTheDocument();
    // A viewer reads every team and changes none.
    expect(screen.queryByRole('button', { name: /new team/i })).toBeNull();
    expect(within(row).queryByRole('button', { name: 'Edit' })).toBeNull();
    expect(within(row).queryByRole('button', { name: 'Delete' })).toBeNull();
  });

  it('lets an operator create a team with two members and a budget', async () => {
    const fetchMock = mockApi({
      'GET /api/v1/teams': page([]),
      'GET /api/v1/users': page([ann, bob]),
      'POST /api/v1/teams': (_url: URL, init: RequestInit) => ({ ...platform, ...JSON.parse(String(init.body)), id: 't-research' }),
    });
    renderWith(<TeamsPage />, { role: 'operator' });
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: /new team/i }));
    fill(await screen.findByLabelText('team-name'), ' Research ');
    await user.click(screen.getByRole('button', { name: /add a member/i }));
    await user.click(screen.getByRole('button', { name: /add a member/i }));
    await choose('member-0-user', 'Ann Lee (ann)');
    await choose('member-0-role', 'team admin');
    await choose('member-1-user', 'bob');
    fill(screen.getByLabelText('budget-amount'), '50');
    fill(screen.getByLabelText('budget-currency'), 'eur');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(bodiesOf(fetchMock, 'POST')).toHaveLength(1));
    expect(bodiesOf(fetchMock, 'POST')[0]).toEqual({
      name: 'Research',
      members: [
        { user_id: 'u-ann', role: 'admin' },
        { user_id: 'u-bob', role: 'member' },
      ],
      allowed_models: [],
      budget: { amount: '50', currency: 'EUR', period: 'monthly' },
    });
  });

  it('refuses the same user twice in a team', async () => {
    const fetchMock = mockApi({ 'GET /api/v1/teams': page([]), 'GET /api/v1/users': page([ann, bob]) });
    renderWith(<TeamsPage />, { role: 'admin' });
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: /new team/i }));
    fill(await screen.findByLabelText('team-name'), 'Twice');
    await user.click(screen.getByRole('button', { name: /add a member/i }));
    await user.click(screen.getByRole('button', { name: /add a member/i }));
    await choose('member-0-user', 'bob');
    await choose('member-1-user', 'bob');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect((await screen.findAllByText('This user is in the list twice')).length).toBeGreaterThan(0);
    expect(bodiesOf(fetchMock, 'POST')).toHaveLength(0);
  });

  it('lets a team admin change the members only, and sends only the version and the members', async () => {
    const fetchMock = mockApi({
      'GET /api/v1/teams': page([platform]),
      'PATCH /api/v1/teams/t-platform': (_url: URL, init: RequestInit) => ({ ...platform, ...JSON.parse(String(init.body)), version: 4 }),
    });
    renderWith(<TeamsPage />, { role: 'member', user: annSignedIn });
    const user = userEvent.setup();
    const row = (await screen.findByText('Platform')).closest('tr')!;
    expect(screen.queryByRole('button', { name: /new team/i })).toBeNull();
    expect(within(row).queryByRole('button', { name: 'Delete' })).toBeNull();
    await user.click(within(row).getByRole('button', { name: 'Edit' }));
    // Without the right to list users, members are shown and added by username.
    expect(await screen.findByLabelText('member-1-user')).toHaveValue('bob');
    expect(screen.getByLabelText('team-name')).toBeDisabled();
    expect(screen.getByLabelText('budget-amount')).toBeDisabled();
    expect(screen.getByLabelText('budget-currency')).toBeDisabled();
    expect(screen.getByLabelText('team-rpm')).toBeDisabled();
    expect(screen.getByLabelText('team-tpm')).toBeDisabled();
    expect(screen.getByRole('combobox', { name: 'team-allowed-models' })).toBeDisabled();
    expect(screen.getByLabelText('member-0-user')).not.toBeDisabled();
    await choose('member-1-role', 'team admin');
    await user.click(screen.getByRole('button', { name: /add a member/i }));
    fill(screen.getByLabelText('member-2-user'), 'cy');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(bodiesOf(fetchMock, 'PATCH')).toHaveLength(1));
    expect(bodiesOf(fetchMock, 'PATCH')[0]).toEqual({
      version: 3,
      members: [
        { user_id: 'u-ann', role: 'admin' },
        { user_id: 'u-bob', role: 'admin' },
        { username: 'cy', role: 'member' },
      ],
    });
    expect(fetchMock.mock.calls.some(([url]) => String(url).includes('/api/v1/users'))).toBe(false);
  });

  it('shows a member their team without create, edit or delete buttons', async () => {
    mockApi({ 'GET /api/v1/teams': page([platform]) });
    renderWith(<TeamsPage />, { role: 'member', user: bobSignedIn });
    const row = (await screen.findByText('Platform')).closest('tr')!;
    expect(within(row).getByText('3.14 / 25.00 USD monthly')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /new team/i })).toBeNull();
    expect(within(row).queryByRole('button', { name: 'Edit' })).toBeNull();
    expect(within(row).queryByRole('button', { name: 'Delete' })).toBeNull();
  });

  it('sends null to remove a budget and limits when an operator edits', async () => {
    const fetchMock = mockApi({
      'GET /api/v1/teams': page([platform]),
      'GET /api/v1/users': page([ann, bob]),
      'PATCH /api/v1/teams/t-platform': platform,
    });
    renderWith(<TeamsPage />, { role: 'operator' });
    const user = userEvent.setup();
    const row = (await screen.findByText('Platform')).closest('tr')!;
    await user.click(within(row).getByRole('button', { name: 'Edit' }));
    fill(await screen.findByLabelText('budget-amount'), '');
    fill(screen.getByLabelText('team-rpm'), '');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(bodiesOf(fetchMock, 'PATCH')).toHaveLength(1));
    expect(bodiesOf(fetchMock, 'PATCH')[0]).toEqual({
      version: 3,
      name: 'Platform',
      members: platform.members.map(({ user_id, role }) => ({ user_id, role })),
      allowed_models: ['gpt-*'],
      budget: null,
      rpm: null,
      tpm: 200000,
    });
  });
});

describe('tokens charged to a team', () => {
  it('the token form sends the chosen team', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<TokenForm users={[ann, bob]} teams={[platform]} modelAliases={[]} onSubmit={onSubmit} />);
    fill(screen.getByLabelText('Name'), 'Platform CI');
    await choose('token-team', 'Platform');
    // With a team chosen, the owner is one of its members.
    await choose('token-owner', 'bob');
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toEqual({
      name: 'Platform CI',
      owner_user_id: 'u-bob',
      team_id: 't-platform',
      allowed_models: [],
      rpm: null,
      tpm: null,
      budget: null,
      expires_at: null,
      enabled: true,
    });
  });

  it("lets a team admin pick the owner among the team's members, and only once the team is chosen", async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<TokenForm teams={[platform]} managedTeamIds={['t-platform']} modelAliases={[]} onSubmit={onSubmit} />, {
      role: 'member',
      user: annSignedIn,
    });
    fill(screen.getByLabelText('Name'), 'Bob CI');
    expect(screen.queryByRole('combobox', { name: 'token-owner' })).toBeNull();
    await choose('token-team', 'Platform');
    await choose('token-owner', 'u-bob');
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toMatchObject({ name: 'Bob CI', owner_user_id: 'u-bob', team_id: 't-platform' });
  });

  it('sends null to take a token off its team, and nothing when it had none', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    const view = renderWith(
      <TokenForm token={{ ...token, team_id: 't-platform' }} teams={[platform]} modelAliases={[]} onSubmit={onSubmit} />,
    );
    const user = userEvent.setup();
    const clear = screen.getByRole('combobox', { name: 'token-team' }).closest('.ant-select')!.querySelector('.ant-select-clear')!;
    fireEvent.mouseDown(clear);
    fireEvent.click(clear);
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0].team_id).toBeNull();
    view.unmount();
    renderWith(<TokenForm token={token} teams={[platform]} modelAliases={[]} onSubmit={onSubmit} />);
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(2));
    expect('team_id' in onSubmit.mock.calls[1][0]).toBe(false);
  });

  it("shows each token's team on the Tokens page", async () => {
    mockApi({
      'GET /api/v1/tokens': page([{ ...token, team_id: 't-platform' }]),
      'GET /api/v1/teams': page([platform]),
      'GET /api/v1/users': page([ann, bob]),
    });
    renderWith(<TokensPage />, { role: 'admin' });
    const row = (await screen.findByText('CI pipeline')).closest('tr')!;
    expect(await within(row).findByText('Platform')).toBeInTheDocument();
    expect(screen.getByRole('columnheader', { name: 'Team' })).toBeInTheDocument();
  });
});

describe('users with a budget and allowed models', () => {
  it('sends them from the user form', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<UserForm user={{ ...ann, allowed_models: ['gpt-*'] }} modelAliases={['gpt-test']} onSubmit={onSubmit} />);
    fill(screen.getByLabelText('budget-amount'), '10');
    await choose('budget-period', 'weekly');
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toEqual({
      username: 'ann',
      display_name: 'Ann Lee',
      role: 'member',
      enabled: true,
      allowed_models: ['gpt-*'],
      budget: { amount: '10', currency: 'USD', period: 'weekly' },
    });
  });
});

describe('usage by team', () => {
  it('filters by a team and breaks down by team', async () => {
    const fetchMock = mockApi({
      'GET /api/v1/teams': page([platform]),
      'GET /api/v1/tokens': page([token]),
      'GET /api/v1/analytics/summary': summary,
      'GET /api/v1/analytics/timeseries': { bucket: 'hour', points: [] },
      'GET /api/v1/analytics/requests': { rows: [], total: 0 },
      'GET /api/v1/analytics/breakdown': (url: URL) => ({
        by: url.searchParams.get('by'),
        rows: [{ key: 't-platform', requests: 5, errors: 0, input_tokens: 1, output_tokens: 1, cost: '0.1', latency_p95_ms: 10 }],
      }),
    });
    renderWith(<UsagePage />, { role: 'member', user: annSignedIn });
    await screen.findByTestId('usage-requests');
    await choose('team', 'Platform');
    await choose('breakdown-by', 'team');
    const urls = () => fetchMock.mock.calls.map(([url]) => new URL(String(url), 'http://x'));
    await waitFor(() =>
      expect(
        urls().some(
          (url) =>
            url.pathname.endsWith('/analytics/breakdown') &&
            url.searchParams.get('by') === 'team' &&
            url.searchParams.get('team') === 't-platform',
        ),
      ).toBe(true),
    );
    expect(urls().some((url) => url.pathname.endsWith('/analytics/summary') && url.searchParams.get('team') === 't-platform')).toBe(true);
  });
});
