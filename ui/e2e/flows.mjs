// The browser flows of the e2e suite, against a stack from stack.mjs. Each step is recorded;
// a failed critical step stops the run, a failed non-critical one is reported and the run goes on.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { OIDC_TEAM_ID, waitFor } from './stack.mjs';

const ADMIN_PASSWORD = 'Admin-e2e-pass-1';
const VIEWER_PASSWORD = 'Viewer-e2e-pass-1';
const KEY_SECRET = 'sk-e2e-upstream-secret-7k3p';
const MODEL_ALIAS = 'e2e-model';
const TEAM_NAME = 'Platform';
const SSO_TEAM_NAME = 'Gateway leads';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

export async function runFlows({ context, stack, screenshotDir }) {
  mkdirSync(screenshotDir, { recursive: true });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000); // a liveness deadline: the machine is shared and noisy
  const results = [];
  const state = {};
  const base = stack.adminUrl;

  const shot = async (name) => {
    await page.waitForTimeout(300); // let charts and animations settle before the picture
    await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
  };
  const modal = () => page.locator('.ant-modal-content:visible').last();
  // Opens the Select inside `field` and picks `option`, retrying while the options are still
  // loading.
  const pickIn = async (field, what, option) => {
    await waitFor(
      `option ${option} of ${what}`,
      async () => {
        await field.locator('.ant-select-selector').click();
        const choice = page.locator('.ant-select-dropdown:visible .ant-select-item-option', { hasText: option }).first();
        try {
          await choice.waitFor({ timeout: 3_000 });
        } catch {
          await page.keyboard.press('Escape');
          return false;
        }
        await choice.click();
        return true;
      },
      30_000,
      200,
    );
  };
  // The Select of the form item labelled `label`.
  const pickOption = (container, label, option) =>
    pickIn(
      container.locator('.ant-form-item').filter({ has: page.locator('label', { hasText: new RegExp(`^${label}$`) }) }),
      label,
      option,
    );
  // The Select whose combobox is named `name` (its aria-label), for fields without a label.
  const pickNamed = (container, name, option) =>
    pickIn(container.locator('.ant-select').filter({ has: page.getByRole('combobox', { name, exact: true }) }), name, option);
  // Opens the user menu (a hover dropdown) and picks `item`. The menu can close again before
  // the click lands (the header re-renders when the session is refetched), and a click would then
  // wait for an item that never shows: hover again instead.
  const userMenu = async (item) => {
    await waitFor(
      `user menu item ${item}`,
      async () => {
        await page.getByTestId('user-menu').hover();
        const choice = page.locator('.ant-dropdown:visible .ant-dropdown-menu-item', { hasText: item });
        try {
          await choice.click({ timeout: 5_000 });
        } catch {
          await page.mouse.move(0, 0);
          return false;
        }
        return true;
      },
      60_000,
      200,
    );
  };
  const confirmPopover = async () => {
    await page.locator('.ant-popover:visible .ant-btn-primary').click();
  };
  // A GET with the page's session, or with `token`.
  const api = async (pathAndQuery, token) => {
    token ??= await page.evaluate(() => localStorage.getItem('axongate.session'));
    const response = await fetch(`${base}/api/v1${pathAndQuery}`, { headers: { authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`${pathAndQuery}: HTTP ${response.status} ${await response.text()}`);
    return response.headers.get('content-type')?.includes('json') ? response.json() : response.text();
  };
  // A session of a local account, for setup and checks through the API.
  const passwordSession = async (username, password) => {
    const response = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()).token;
  };
  const chat = (secret, body = {}) =>
    fetch(`${stack.ingressUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL_ALIAS, messages: [{ role: 'user', content: 'hello from the e2e test' }], ...body }),
    });

  const step = async (name, critical, fn) => {
    const started = Date.now();
    try {
      await fn();
      results.push({ name, ok: true, ms: Date.now() - started });
      console.log(`[e2e] PASS ${name} (${Date.now() - started} ms)`);
    } catch (error) {
      results.push({ name, ok: false, ms: Date.now() - started, error: error.message });
      console.log(`[e2e] FAIL ${name}: ${error.stack ?? error.message}`);
      await page
        .screenshot({ path: path.join(screenshotDir, `failed-${name.replace(/\W+/g, '-')}.png`), fullPage: true })
        .catch(() => undefined);
      if (critical) throw Object.assign(new Error(`critical step failed: ${name}`), { results });
    }
  };

  try {
    await step('login and forced password change', true, async () => {
      await page.goto(base + '/');
      await page.waitForURL('**/login');
      await page.getByText('Sign in to AxonGate').waitFor();
      await shot('01-login');
      await page.getByLabel('Username').fill('admin');
      await page.getByLabel('Password').fill('admin123');
      // Exactly: the page also has "Sign in with single sign-on".
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByText('Choose a new password', { exact: true }).waitFor();
      await shot('02-change-password');
      await page.getByLabel('Current password').fill('admin123');
      await page.getByLabel('New password', { exact: true }).fill(ADMIN_PASSWORD);
      await page.getByLabel('Repeat the new password').fill(ADMIN_PASSWORD);
      await page.getByRole('button', { name: 'Change password' }).click();
      // The app lands on the Get started page.
      await page.getByRole('heading', { name: 'Get started' }).waitFor();
      // The old password no longer works; the new one does.
      const old = await fetch(`${base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: 'admin123' }),
      });
      assert.equal(old.status, 401);
    });

    await step('create a provider pointing at the mock upstream', true, async () => {
      await page.getByRole('menuitem', { name: 'Providers' }).click();
      await page.getByRole('button', { name: 'New provider' }).click();
      const form = modal();
      await form.getByLabel('Name').fill('Mock upstream');
      await form.getByLabel('Base URL').fill(stack.mockBaseUrl);
      await form.getByRole('switch', { name: /Allow private network/ }).click();
      await form.getByRole('button', { name: 'Save' }).click();
      const row = page.locator('tr', { hasText: 'Mock upstream' });
      await row.waitFor();
      await row.getByText(stack.mockBaseUrl).waitFor();
      const providers = await api('/providers');
      assert.equal(providers.total, 1);
      state.providerId = providers.items[0].id;
    });

    await step('add a key: secret entered once, then only masked; test it', true, async () => {
      await page.getByRole('menuitem', { name: 'Provider keys' }).click();
      await page.getByRole('button', { name: 'Add key' }).click();
      const form = modal();
      await pickOption(form, 'Provider', 'Mock upstream');
      await form.getByLabel('Name').fill('main');
      await form.getByLabel('Secret').fill(KEY_SECRET);
      await form.getByRole('button', { name: 'Save' }).click();
      const row = page.locator('tr', { hasText: '••••' + KEY_SECRET.slice(-4) });
      await row.waitFor();
      // Once the dialog has closed, nothing on the page holds the secret.
      await waitFor('the key secret to leave the page', async () => !(await page.content()).includes(KEY_SECRET), 5_000);
      const listed = JSON.stringify(await api('/provider-keys'));
      assert.ok(!listed.includes(KEY_SECRET), 'the API returned the key secret');
      await row.getByRole('button', { name: 'Test' }).click();
      await page.getByTestId('key-test-result').waitFor();
      const text = await page.getByTestId('key-test-result').textContent();
      assert.match(text, /The key works: HTTP 200/);
      await page.getByRole('button', { name: 'OK' }).click();
      await row.getByText('healthy').waitFor();
      await shot('04-provider-keys');
      await page.getByRole('menuitem', { name: 'Providers' }).click();
      await page.locator('tr', { hasText: 'Mock upstream' }).getByText('1 of 1 healthy').waitFor();
      await shot('03-providers');
    });

    await step('create a model with a route and prices', true, async () => {
      await page.getByRole('menuitem', { name: 'Models' }).click();
      await page.getByRole('button', { name: 'New model' }).click();
      const form = modal();
      await form.getByLabel('Alias').fill(MODEL_ALIAS);
      await form.getByLabel('route-0-upstream').fill('gpt-4o-mini');
      await form.getByLabel('price-input_per_million').fill('2');
      await form.getByLabel('price-output_per_million').fill('8');
      await shot('05-model-form');
      await form.getByRole('button', { name: 'Save' }).click();
      const row = page.locator('tr', { hasText: MODEL_ALIAS });
      await row.getByText('2 / 8 USD').waitFor();
      await shot('06-models');
      const models = await api('/models');
      assert.equal(models.items[0].routes[0].provider_id, state.providerId);
      assert.equal(models.items[0].price.input_per_million, '2');
    });

    await step('create a user token: secret shown once with copy and snippets', true, async () => {
      await page.getByRole('menuitem', { name: 'User tokens' }).click();
      await page.getByRole('button', { name: 'New token' }).click();
      const form = modal();
      await form.getByLabel('Name').fill('e2e token');
      await form.getByLabel('rpm').fill('600');
      await form.getByRole('button', { name: 'Save' }).click();
      const secretInput = page.getByTestId('token-secret');
      await secretInput.waitFor();
      state.secret = await secretInput.inputValue();
      assert.match(state.secret, /^axg-/);
      assert.ok((await page.getByTestId('snippet-curlChat').textContent()).includes(state.secret));
      assert.ok((await page.getByTestId('snippet-claudeCode').textContent()).includes(`ANTHROPIC_AUTH_TOKEN=${state.secret}`));
      assert.ok((await page.getByTestId('snippet-codex').textContent()).includes('wire_api = "responses"'));
      await shot('07-token-secret');
      await modal().locator('.ant-modal-footer').getByRole('button', { name: 'Close' }).click();
      await page.locator('tr', { hasText: 'e2e token' }).waitFor();
      await waitFor('the token secret to leave the page', async () => !(await page.content()).includes(state.secret), 5_000);
    });

    await step('send real traffic through ingress with the token', true, async () => {
      // Ingress follows the config stream; the new token and model arrive within moments.
      await waitFor('ingress to accept the new token', async () => (await chat(state.secret)).status === 200, 30_000, 300);
      let sent = 1;
      for (let index = 0; index < 3; index += 1) {
        const response = await chat(state.secret);
        assert.equal(response.status, 200, await response.text());
        sent += 1;
      }
      const streamed = await chat(state.secret, { stream: true });
      assert.equal(streamed.status, 200);
      assert.match(await streamed.text(), /data: \[DONE\]/);
      sent += 1;
      const anthropic = await fetch(`${stack.ingressUrl}/v1/messages`, {
        method: 'POST',
        // A client's traceparent: ingress (tracing off here) records its trace id with the request.
        headers: {
          'x-api-key': state.secret,
          'anthropic-version': '2023-06-01',
          'content-type': 'application/json',
          traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
        },
        body: JSON.stringify({ model: MODEL_ALIAS, max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(anthropic.status, 200, await anthropic.clone().text());
      sent += 1;
      state.sent = sent;
    });

    await step('usage page shows the requests (numbers from the API)', false, async () => {
      const now = new Date();
      const range = `from=${encodeURIComponent(new Date(now - 3_600_000).toISOString())}&to=${encodeURIComponent(new Date(now.getTime() + 3_600_000).toISOString())}`;
      const summary = await waitFor(
        'the projector to record the requests',
        async () => {
          const value = await api(`/analytics/summary?${range}`);
          return value.requests >= state.sent ? value : null;
        },
        90_000,
        1000,
      );
      await page.getByRole('menuitem', { name: 'Usage' }).click();
      await page.getByRole('heading', { name: 'Usage' }).waitFor();
      const apiSummary = await api(
        `/analytics/summary?from=${encodeURIComponent(new Date(Date.now() - 24 * 3_600_000).toISOString())}&to=${encodeURIComponent(new Date().toISOString())}`,
      );
      await waitFor(
        'the usage summary',
        async () => (await page.getByTestId('usage-requests').textContent()) === apiSummary.requests.toLocaleString('en-US'),
        20_000,
      );
      assert.ok(summary.requests >= state.sent);
      await page.locator('.ant-table-row', { hasText: MODEL_ALIAS }).first().waitFor();
      const log = await api(`/analytics/requests?${range}&limit=50&offset=0`);
      await page.getByText(`${log.total} in total`).first().waitFor();
      assert.ok(
        log.rows.some((row) => row.trace_id === TRACE_ID),
        'the request sent with a traceparent carries its trace id',
      );
      await page.getByTitle(TRACE_ID).first().waitFor();
      await shot('09-usage');
      state.usageRequests = apiSummary.requests;
    });

    await step('CSV export of the current filter', false, async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
      const file = await download.path();
      const text = readFileSync(file, 'utf8');
      assert.ok(text.split('\n').filter((line) => line.trim()).length >= state.sent + 1, `CSV has too few lines:\n${text.slice(0, 500)}`);
      assert.ok(text.includes(MODEL_ALIAS));
    });

    await step('dashboard shows the requests (numbers from the API)', false, async () => {
      await page.getByRole('menuitem', { name: 'Dashboard' }).click();
      const cards = await api('/dashboard');
      assert.ok(cards.requests_today >= state.sent, `requests_today ${cards.requests_today}`);
      await waitFor(
        'the dashboard cards',
        async () => (await page.getByTestId('card-requests-today').textContent()) === cards.requests_today.toLocaleString('en-US'),
        20_000,
      );
      assert.equal(await page.getByTestId('card-active-providers').textContent(), String(cards.active_providers));
      assert.equal(await page.getByTestId('card-healthy-keys').textContent(), `${cards.healthy_keys} / ${cards.total_keys}`);
      await page.locator('.recharts-surface').first().waitFor();
      await shot('10-dashboard');
    });

    await step('audit log lists the changes with their diff', false, async () => {
      await page.getByRole('menuitem', { name: 'Audit log' }).click();
      const row = page.locator('.ant-table-row', { hasText: 'model' }).first();
      await row.waitFor();
      await row.locator('.ant-table-row-expand-icon').click();
      await page.getByText('alias', { exact: true }).first().waitFor();
      await shot('11-audit');
    });

    await step('create a viewer and a member', true, async () => {
      await page.getByRole('menuitem', { name: 'Users and roles' }).click();
      await page.getByRole('button', { name: 'New user' }).click();
      const form = modal();
      await form.getByLabel('Username').fill('vic');
      await pickOption(form, 'Role', 'viewer');
      await form.getByLabel('Password').fill('viewer-initial-1');
      await form.getByRole('button', { name: 'Save' }).click();
      await page.locator('tr', { hasText: 'vic' }).getByText('viewer').waitFor();
      await page.getByRole('button', { name: 'New user' }).click();
      const second = modal();
      await second.getByLabel('Username').fill('mia');
      await second.getByLabel('Password').fill('member-initial-1');
      await second.getByRole('button', { name: 'Save' }).click();
      await page.locator('tr', { hasText: 'mia' }).getByText('member').waitFor();
      await shot('12-users');
    });

    await step('language switch', false, async () => {
      await page.getByRole('menuitem', { name: 'Dashboard' }).click();
      await page.getByTestId('language-select').click();
      await page.locator('.ant-select-dropdown:visible .ant-select-item-option', { hasText: '简体中文' }).click();
      await page.getByRole('heading', { name: '仪表盘' }).waitFor();
      await page.getByRole('menuitem', { name: /供应商$/ }).waitFor();
      // Ant Design's own texts follow too (the date picker's placeholder).
      assert.equal(await page.locator('.ant-picker-input input').first().getAttribute('placeholder'), '开始日期');
      await shot('13-dashboard-zh');
      await page.getByTestId('language-select').click();
      await page.locator('.ant-select-dropdown:visible .ant-select-item-option', { hasText: 'English' }).click();
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    });

    await step('profile page', false, async () => {
      await userMenu('Profile and settings');
      await page.getByText('Change password').first().waitFor();
      await shot('14-profile');
      // A deep link loads the app (admin-api's SPA fallback) with the session kept.
      await page.goto(`${base}/models`);
      await page.locator('tr', { hasText: MODEL_ALIAS }).waitFor();
    });

    await step('rotate the token: new secret shown once, the old one refused', false, async () => {
      await page.getByRole('menuitem', { name: 'User tokens' }).click();
      const row = page.locator('tr', { hasText: 'e2e token' });
      await row.getByRole('button', { name: 'Rotate' }).click();
      await confirmPopover();
      const secretInput = page.getByTestId('token-secret');
      await secretInput.waitFor();
      const rotated = await secretInput.inputValue();
      assert.match(rotated, /^axg-/);
      assert.notEqual(rotated, state.secret);
      await modal().locator('.ant-modal-footer').getByRole('button', { name: 'Close' }).click();
      await waitFor('ingress to accept the rotated secret', async () => (await chat(rotated)).status === 200, 30_000, 300);
      assert.equal((await chat(state.secret)).status, 401);
      state.secret = rotated;
    });

    await step('revoke the token and see ingress refuse it', false, async () => {
      await page.getByRole('menuitem', { name: 'User tokens' }).click();
      const row = page.locator('tr', { hasText: 'e2e token' });
      await row.waitFor();
      await shot('08-tokens');
      await row.getByRole('button', { name: 'Revoke' }).click();
      await confirmPopover();
      await page.getByText('Token revoked').waitFor();
      await row.waitFor({ state: 'detached' });
      const status = await waitFor(
        'ingress to refuse the revoked token',
        async () => {
          const response = await chat(state.secret);
          return response.status === 401 ? response.status : null;
        },
        30_000,
        300,
      );
      assert.equal(status, 401);
    });

    await step('a viewer sees no edit buttons', false, async () => {
      await userMenu('Sign out');
      await page.getByText('Sign in to AxonGate').waitFor();
      await page.getByLabel('Username').fill('vic');
      await page.getByLabel('Password').fill('viewer-initial-1');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByText('Choose a new password', { exact: true }).waitFor();
      await page.getByLabel('Current password').fill('viewer-initial-1');
      await page.getByLabel('New password', { exact: true }).fill(VIEWER_PASSWORD);
      await page.getByLabel('Repeat the new password').fill(VIEWER_PASSWORD);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByTestId('user-menu').getByText('viewer').waitFor();
      await page.getByRole('menuitem', { name: 'Providers' }).click();
      await page.locator('tr', { hasText: 'Mock upstream' }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'New provider' }).count(), 0);
      assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0);
      assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 0);
      assert.ok(await page.locator('tr', { hasText: 'Mock upstream' }).getByRole('switch').isDisabled());
      await shot('15-viewer-providers');
      await page.getByRole('menuitem', { name: 'Provider keys' }).click();
      await page.locator('tr', { hasText: 'main' }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Test' }).count(), 0);
      assert.equal(await page.getByRole('button', { name: 'Add key' }).count(), 0);
      await page.getByRole('menuitem', { name: 'Models' }).click();
      await page.locator('tr', { hasText: MODEL_ALIAS }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'New model' }).count(), 0);
      assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0);
      await page.getByRole('menuitem', { name: 'User tokens' }).click();
      await page.getByRole('heading', { name: 'User tokens' }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'New token' }).count(), 0);
      assert.equal(await page.getByRole('menuitem', { name: 'Users and roles' }).count(), 0);
      // The API refuses a viewer's write whatever the UI shows.
      const token = await page.evaluate(() => localStorage.getItem('axongate.session'));
      const refused = await fetch(`${base}/api/v1/providers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', protocol: 'openai', base_url: 'https://example.com/v1' }),
      });
      assert.equal(refused.status, 403);
      await shot('16-viewer-tokens');
    });

    await step('a member sees and manages only their own tokens', false, async () => {
      await userMenu('Sign out');
      await page.getByText('Sign in to AxonGate').waitFor();
      await page.getByLabel('Username').fill('mia');
      await page.getByLabel('Password').fill('member-initial-1');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByText('Choose a new password', { exact: true }).waitFor();
      await page.getByLabel('Current password').fill('member-initial-1');
      await page.getByLabel('New password', { exact: true }).fill('Member-e2e-pass-1');
      await page.getByLabel('Repeat the new password').fill('Member-e2e-pass-1');
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByTestId('user-menu').getByText('member').waitFor();
      for (const hidden of ['Providers', 'Provider keys', 'Models', 'Rate limits', 'Audit log', 'Users and roles']) {
        assert.equal(await page.getByRole('menuitem', { name: new RegExp(`${hidden}$`) }).count(), 0, `${hidden} in a member's menu`);
      }
      await page.getByRole('menuitem', { name: 'User tokens' }).click();
      await page.getByRole('heading', { name: 'User tokens' }).waitFor();
      await page.getByRole('button', { name: 'New token' }).click();
      await modal().getByLabel('Name').fill('mia laptop');
      await modal().getByRole('button', { name: 'Save' }).click();
      await page.getByTestId('token-secret').waitFor();
      await modal().locator('.ant-modal-footer').getByRole('button', { name: 'Close' }).click();
      await page.locator('tr', { hasText: 'mia laptop' }).waitFor();
      assert.equal(await page.getByRole('columnheader', { name: 'Owner' }).count(), 0);
      const own = await api('/tokens');
      assert.deepEqual(
        own.items.map((token) => token.name),
        ['mia laptop'],
      );
      await shot('17-member-tokens');
      await page.getByRole('menuitem', { name: 'Usage' }).click();
      await page.getByTestId('usage-requests').waitFor();
      const summary = await api(
        `/analytics/summary?from=${encodeURIComponent(new Date(Date.now() - 86_400_000).toISOString())}&to=${encodeURIComponent(new Date().toISOString())}`,
      );
      assert.equal(summary.requests, 0, 'a member sees the requests of tokens that are not theirs');
      await waitFor('the member usage summary', async () => (await page.getByTestId('usage-requests').textContent()) === '0', 20_000);
    });

    await step(
      'teams: a team with its admin and a budget, a token charged to it; the team admin edits only the members',
      false,
      async () => {
        await userMenu('Sign out');
        await page.getByText('Sign in to AxonGate').waitFor();
        await page.getByLabel('Username').fill('admin');
        await page.getByLabel('Password').fill(ADMIN_PASSWORD);
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
        // Users and roles is in an admin's menu only.
        await page.getByRole('menuitem', { name: 'Users and roles' }).click();
        await page.getByRole('button', { name: 'New user' }).click();
        const userForm = modal();
        await userForm.getByLabel('Username').fill('tessa');
        await userForm.getByLabel('Password').fill('teamadmin-initial-1');
        await userForm.getByRole('button', { name: 'Save' }).click();
        await page.locator('tr', { hasText: 'tessa' }).getByText('member').waitFor();
        const tessa = (await api('/users?q=tessa')).items.find((user) => user.username === 'tessa');
        assert.ok(tessa, 'the new user is listed');

        // An admin creates the team in the browser: tessa as its admin, a budget and an rpm.
        await page.getByRole('menuitem', { name: 'Teams' }).click();
        await page.getByRole('heading', { name: 'Teams' }).waitFor();
        await page.getByRole('button', { name: 'New team' }).click();
        const form = modal();
        await form.getByLabel('team-name').fill(TEAM_NAME);
        await form.getByRole('button', { name: 'Add a member' }).click();
        await pickNamed(form, 'member-0-user', 'tessa');
        await pickNamed(form, 'member-0-role', 'team admin');
        await form.getByLabel('budget-amount').fill('25');
        await form.getByLabel('team-rpm').fill('600');
        await shot('18-team-form');
        await form.getByRole('button', { name: 'Save' }).click();
        const row = page.locator('tr', { hasText: TEAM_NAME });
        await row.getByText('tessa · team admin').waitFor();
        await row.getByText('1 members').waitFor();
        await row.getByText('25.00 USD monthly', { exact: true }).waitFor();
        await row.getByText('0.00 / 25.00 USD monthly', { exact: true }).waitFor();
        await row.getByText('600 / ∞').waitFor();
        await shot('19-teams');
        const [team] = (await api('/teams')).items;
        assert.equal(team.name, TEAM_NAME);
        assert.deepEqual(team.members, [{ user_id: tessa.id, role: 'admin', username: 'tessa' }]);
        assert.equal(Number(team.budget.amount), 25);
        assert.equal(team.budget.currency, 'USD');
        assert.equal(team.budget.period, 'monthly');
        assert.equal(Number(team.spend.amount), 0);
        state.teamId = team.id;

        // A token charged to the team, owned by one of its members.
        await page.getByRole('menuitem', { name: 'User tokens' }).click();
        await page.getByRole('button', { name: 'New token' }).click();
        const tokenForm = modal();
        await tokenForm.getByLabel('Name').fill('platform ci');
        await pickOption(tokenForm, 'Team', TEAM_NAME);
        await pickOption(tokenForm, 'Owner', 'tessa');
        await tokenForm.getByRole('button', { name: 'Save' }).click();
        const secretInput = page.getByTestId('token-secret');
        await secretInput.waitFor();
        const teamSecret = await secretInput.inputValue();
        await modal().locator('.ant-modal-footer').getByRole('button', { name: 'Close' }).click();
        const tokenRow = page.locator('tr', { hasText: 'platform ci' });
        await tokenRow.getByText(TEAM_NAME, { exact: true }).waitFor();
        const charged = (await api('/tokens')).items.find((token) => token.name === 'platform ci');
        assert.equal(charged.team_id, state.teamId);
        assert.equal(charged.owner_user_id, tessa.id);
        // Its traffic goes through ingress and is charged to the team.
        await waitFor('ingress to accept the team token', async () => (await chat(teamSecret)).status === 200, 30_000, 300);
        const spent = await waitFor(
          'the projector to charge the team',
          async () => {
            const [current] = (await api('/teams')).items;
            return Number(current.spend.amount) > 0 ? current.spend : null;
          },
          90_000,
          1000,
        );

        // The team admin (a member) sees the team and its spend, and changes only its members.
        await userMenu('Sign out');
        await page.getByText('Sign in to AxonGate').waitFor();
        await page.getByLabel('Username').fill('tessa');
        await page.getByLabel('Password').fill('teamadmin-initial-1');
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
        await page.getByText('Choose a new password', { exact: true }).waitFor();
        await page.getByLabel('Current password').fill('teamadmin-initial-1');
        await page.getByLabel('New password', { exact: true }).fill('Teamadmin-e2e-pass-1');
        await page.getByLabel('Repeat the new password').fill('Teamadmin-e2e-pass-1');
        await page.getByRole('button', { name: 'Change password' }).click();
        await page.getByTestId('user-menu').getByText('member').waitFor();
        await page.getByRole('menuitem', { name: 'Teams' }).click();
        await page.getByRole('heading', { name: 'Teams' }).waitFor();
        // Money as the page formats it (format.ts), from the API's decimal.
        const amount = Number(spent.amount);
        const spendText = amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: amount < 1 ? 6 : 2 });
        await row.getByText(`${spendText} / 25.00 USD monthly`, { exact: true }).waitFor();
        assert.equal(await page.getByRole('button', { name: 'New team' }).count(), 0);
        assert.equal(await row.getByRole('button', { name: 'Delete' }).count(), 0);
        await row.getByRole('button', { name: 'Edit' }).click();
        const edit = modal();
        await edit.getByText("As a team admin you change the team's members").waitFor();
        // Without the right to list users, members are shown and added by username.
        const firstMember = edit.getByLabel('member-0-user', { exact: true });
        await firstMember.waitFor();
        assert.equal(await firstMember.inputValue(), 'tessa');
        assert.ok(await firstMember.isEnabled());
        assert.ok(await edit.getByRole('combobox', { name: 'member-0-role', exact: true }).isEnabled());
        for (const field of ['team-name', 'budget-amount', 'budget-currency', 'team-rpm', 'team-tpm']) {
          assert.ok(await edit.getByLabel(field, { exact: true }).isDisabled(), `${field} is editable for a team admin`);
        }
        for (const field of ['team-allowed-models', 'budget-period']) {
          assert.ok(await edit.getByRole('combobox', { name: field, exact: true }).isDisabled(), `${field} is editable for a team admin`);
        }
        await edit.getByRole('button', { name: 'Add a member' }).click();
        await edit.getByLabel('member-1-user', { exact: true }).fill('mia');
        await shot('20-team-admin-form');
        await edit.getByRole('button', { name: 'Save' }).click();
        await row.getByText('2 members').waitFor();
        await row.getByText('mia', { exact: true }).waitFor();
        const [changed] = (await api('/teams')).items;
        assert.deepEqual(
          changed.members.map(({ username, role }) => ({ username, role })),
          [
            { username: 'tessa', role: 'admin' },
            { username: 'mia', role: 'member' },
          ],
        );
        // The API refuses a team admin's change of anything but the members.
        const token = await page.evaluate(() => localStorage.getItem('axongate.session'));
        const refused = await fetch(`${base}/api/v1/teams/${encodeURIComponent(state.teamId)}`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ version: changed.version, name: 'Renamed' }),
        });
        assert.equal(refused.status, 403);
        // The team's token is on the team admin's Tokens page.
        await page.getByRole('menuitem', { name: 'User tokens' }).click();
        await page.locator('tr', { hasText: 'platform ci' }).getByText(TEAM_NAME, { exact: true }).waitFor();
      },
    );

    await step(
      'single sign-on: sam signs in at the OpenID provider with the role and team of their groups; the local admin still signs in with a password',
      false,
      async () => {
        // Setup through the API: the team that the provider's group `gateway-leads` maps to.
        const adminToken = await passwordSession('admin', ADMIN_PASSWORD);
        const created = await fetch(`${base}/api/v1/teams`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id: OIDC_TEAM_ID, name: SSO_TEAM_NAME, members: [] }),
        });
        assert.equal(created.status, 201, await created.text());

        await userMenu('Sign out');
        await page.getByText('Sign in to AxonGate').waitFor();
        await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
        // The provider's own login page.
        await page.waitForURL((url) => url.origin === stack.oidcIssuer && url.pathname === '/authorize');
        await page.getByRole('heading', { name: 'E2E identity provider' }).waitFor();
        await page.getByLabel('Username').fill('sam');
        await shot('21-sso-provider');
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
        // Back through admin-api's callback to /login#sso=…, which the UI exchanges for a session,
        // then to the home page.
        await page.getByRole('heading', { name: 'Get started' }).waitFor();
        const landed = new URL(page.url());
        assert.equal(`${landed.origin}${landed.pathname}${landed.hash}`, `${base}/`);
        const menu = page.getByTestId('user-menu');
        await menu.getByText('Sam Rivera', { exact: true }).waitFor();
        await menu.getByText('operator', { exact: true }).waitFor();
        const me = await api('/auth/me');
        assert.equal(me.username, 'sam');
        assert.equal(me.role, 'operator');
        assert.equal(me.must_change_password, false);
        assert.deepEqual(me.teams, [{ id: OIDC_TEAM_ID, name: SSO_TEAM_NAME, role: 'admin' }]);

        // The profile shows the account the provider's claims made.
        await userMenu('Profile and settings');
        const account = (label) =>
          page
            .locator('.ant-descriptions-row')
            .filter({ has: page.locator('.ant-descriptions-item-label', { hasText: new RegExp(`^${label}$`) }) })
            .locator('.ant-descriptions-item-content');
        await account('Username').getByText('sam', { exact: true }).waitFor();
        await account('Display name').getByText('Sam Rivera', { exact: true }).waitFor();
        await account('Role').getByText('operator', { exact: true }).waitFor();
        await page.mouse.move(0, 0); // the user menu closes before the picture
        await shot('22-sso-profile');

        // The group made sam the team's admin.
        await page.getByRole('menuitem', { name: 'Teams' }).click();
        await page.getByRole('heading', { name: 'Teams' }).waitFor();
        const row = page.locator('tr', { hasText: SSO_TEAM_NAME });
        await row.getByText('sam · team admin', { exact: true }).waitFor();
        await row.getByText('1 members').waitFor();
        await shot('23-sso-teams');

        // Break-glass: the local admin signs in with the password, and finds sam's account.
        await userMenu('Sign out');
        await page.getByText('Sign in to AxonGate').waitFor();
        await page.getByLabel('Username').fill('admin');
        await page.getByLabel('Password').fill(ADMIN_PASSWORD);
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
        await page.getByRole('menuitem', { name: 'Users and roles' }).click();
        await page.locator('tr', { hasText: 'Sam Rivera' }).getByText('operator', { exact: true }).waitFor();
        const admin = await api('/auth/me');
        assert.equal(admin.username, 'admin');
        assert.equal(admin.role, 'admin');
        const [sam] = (await api('/users?q=sam')).items.filter((user) => user.username === 'sam');
        assert.equal(sam.sso_subject, `${stack.oidcIssuer}#e2e-00u-sam`);
      },
    );

    await step('single sign-on: a refusal at the provider is shown on the login page', false, async () => {
      await userMenu('Sign out');
      await page.getByText('Sign in to AxonGate').waitFor();
      await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
      await page.getByRole('heading', { name: 'E2E identity provider' }).waitFor();
      await page.getByRole('button', { name: 'Cancel', exact: true }).click();
      // The provider answers `error=access_denied`; admin-api sends the browser to
      // /login#sso_error=…, and the page shows it.
      await page
        .getByRole('alert')
        .getByText('Single sign-on failed: the identity provider did not sign you in (access_denied) The user cancelled the sign-in', {
          exact: true,
        })
        .waitFor();
      await page.getByRole('button', { name: 'Sign in with single sign-on' }).waitFor();
      const landed = new URL(page.url());
      assert.equal(`${landed.pathname}${landed.hash}`, '/login', 'the error left the URL');
      assert.equal(await page.evaluate(() => localStorage.getItem('axongate.session')), null);
      await shot('24-sso-refused');
      // The refusal is audited.
      const adminToken = await passwordSession('admin', ADMIN_PASSWORD);
      await waitFor(
        'the refused sign-in in the audit log',
        async () => JSON.stringify(await api('/audit?type=login.failed', adminToken)).includes('sso_provider_refused'),
        60_000,
        1000,
      );
    });
  } catch (error) {
    if (!error.results) throw error;
  }
  return results;
}
