import { screen, waitFor, within, fireEvent } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import { ProviderForm } from '../components/ProviderForm';
import { KeyForm } from '../components/KeyForm';
import { ModelForm } from '../components/ModelForm';
import { TokenForm } from '../components/TokenForm';
import { SecretModal } from '../components/SecretModal';
import { snippets } from '../components/snippets';
import { UserForm } from '../pages/Users';
import { keys, model, provider, token } from '../test/fixtures';
import { renderWith } from '../test/utils';

function fill(element: HTMLElement, value: string) {
  fireEvent.change(element, { target: { value } });
}

describe('ProviderForm', () => {
  it('sends the provider body with headers and timeouts', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<ProviderForm onSubmit={onSubmit} />);
    const user = userEvent.setup();
    fill(screen.getByLabelText('Name'), 'Mock');
    fill(screen.getByLabelText('Base URL'), 'http://127.0.0.1:9100/v1');
    await user.click(screen.getByRole('switch', { name: /allow private network/i }));
    await user.click(screen.getByRole('button', { name: /add header/i }));
    fill(screen.getByPlaceholderText('Header'), 'OpenAI-Organization');
    fill(screen.getByPlaceholderText('Value'), 'org-1');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toEqual({
      name: 'Mock',
      protocol: 'openai',
      base_url: 'http://127.0.0.1:9100/v1',
      extra_headers: { 'OpenAI-Organization': 'org-1' },
      timeouts: { connect_ms: 5000, first_byte_ms: 60000, idle_ms: 60000, total_ms: 600000 },
      enabled: true,
      allow_private_network: true,
    });
  });

  it('asks a non-admin who moves the provider for every key secret, and sends them apart', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<ProviderForm provider={provider} keys={keys} reenterSecrets onSubmit={onSubmit} />);
    const user = userEvent.setup();
    expect(screen.queryByLabelText('secret-of-main')).not.toBeInTheDocument();
    fill(screen.getByLabelText('Base URL'), 'http://127.0.0.1:9200/v1');
    fill(await screen.findByLabelText('secret-of-main'), 'sk-main-1');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    // Every key's secret is required.
    await waitFor(() => expect(document.querySelector('.ant-form-item-explain-error')).not.toBeNull());
    expect(onSubmit).not.toHaveBeenCalled();
    fill(screen.getByLabelText('secret-of-backup'), 'sk-backup-2');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toMatchObject({
      base_url: 'http://127.0.0.1:9200/v1',
      key_secrets: { k1: 'sk-main-1', k2: 'sk-backup-2' },
    });
  });

  it('asks an admin for no secret, and no one when the provider stays put', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    const { unmount } = renderWith(<ProviderForm provider={provider} keys={keys} onSubmit={onSubmit} />);
    const user = userEvent.setup();
    fill(screen.getByLabelText('Base URL'), 'http://127.0.0.1:9200/v1');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0].key_secrets).toBeUndefined();
    unmount();
    renderWith(<ProviderForm provider={provider} keys={keys} reenterSecrets onSubmit={onSubmit} />);
    fill(screen.getByLabelText('Name'), 'Renamed');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(2));
    expect(onSubmit.mock.calls[1][0].key_secrets).toBeUndefined();
  });

  it('shows the API error on the field it names', async () => {
    const onSubmit = vi.fn().mockRejectedValue(new ApiError(400, 'invalid_field', 'base_url must be http or https', 'base_url'));
    renderWith(<ProviderForm provider={provider} onSubmit={onSubmit} />);
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('base_url must be http or https')).toBeInTheDocument();
  });

  it('does not submit without the required fields', async () => {
    const onSubmit = vi.fn();
    renderWith(<ProviderForm onSubmit={onSubmit} />);
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(document.querySelector('.ant-form-item-has-error')).not.toBeNull());
    expect(onSubmit).not.toHaveBeenCalled();
  });
});

describe('KeyForm', () => {
  it('requires the secret for a new key and sends it once', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<KeyForm providers={[provider]} defaultProviderId="mock" onSubmit={onSubmit} />);
    const user = userEvent.setup();
    fill(screen.getByLabelText('Name'), 'main');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(document.querySelector('.ant-form-item-has-error')).not.toBeNull());
    expect(onSubmit).not.toHaveBeenCalled();
    fill(screen.getByLabelText('Secret'), 'sk-test-1234');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() =>
      expect(onSubmit).toHaveBeenCalledWith({ provider_id: 'mock', name: 'main', enabled: true, secret: 'sk-test-1234' }),
    );
  });

  it('edits without showing or resending the secret', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<KeyForm keyItem={keys[0]} providers={[provider]} onSubmit={onSubmit} />);
    expect(screen.getByText(/••••abcd/)).toBeInTheDocument();
    expect(screen.getByLabelText('New secret (optional)')).toHaveValue('');
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledWith({ provider_id: 'mock', name: 'main', enabled: true }));
  });
});

describe('ModelForm', () => {
  it('sends the alias, the route and the prices as decimal strings', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<ModelForm providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    const user = userEvent.setup();
    fill(screen.getByLabelText('Alias'), 'gpt-test');
    fill(screen.getByLabelText('route-0-upstream'), 'gpt-4.1');
    fill(screen.getByLabelText('route-0-weight'), '3');
    fill(screen.getByLabelText('price-input_per_million'), '2.5');
    fill(screen.getByLabelText('price-output_per_million'), '10');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toEqual({
      alias: 'gpt-test',
      enabled: true,
      routes: [{ provider_id: 'mock', upstream_model: 'gpt-4.1', key_ids: [], priority: 0, weight: 3 }],
      price: {
        currency: 'USD',
        input_per_million: '2.5',
        output_per_million: '10',
        cache_read_per_million: '0',
        cache_write_per_million: '0',
      },
      context_window: null,
      retry: null,
      response_cache: null,
      routing: null,
    });
  });

  it('sets a routing strategy, asks for a session header only for cache affinity, and keeps it on edit', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    const view = renderWith(<ModelForm model={model} providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    expect(screen.queryByLabelText('routing-session_header')).toBeNull();
    fireEvent.mouseDown(screen.getByRole('combobox', { name: 'routing-strategy' }));
    const option = (title: string) => document.querySelector(`.ant-select-item-option[title="${title}"]`);
    await waitFor(() => expect(option('Cache affinity (one session, one route and key)')).not.toBeNull());
    fireEvent.click(option('Cache affinity (one session, one route and key)')!);
    fill(await screen.findByLabelText('routing-session_header'), 'x-session-id');
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0].routing).toEqual({ strategy: 'cache_affinity', session_header: 'x-session-id' });
    view.unmount();

    const routed = { ...model, routing: { strategy: 'latency' as const } };
    renderWith(<ModelForm model={routed} providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    expect(screen.queryByLabelText('routing-session_header')).toBeNull();
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(2));
    expect(onSubmit.mock.calls[1][0].routing).toEqual({ strategy: 'latency' });
  });

  it('turns the response cache on with its TTL and switches, and keeps it on edit', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    const user = userEvent.setup();
    const view = renderWith(<ModelForm model={model} providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    expect(screen.queryByLabelText('cache-ttl_secs')).toBeNull();
    await user.click(screen.getByRole('switch', { name: 'cache-on' }));
    fill(await screen.findByLabelText('cache-ttl_secs'), '600');
    await user.click(screen.getByRole('switch', { name: 'cache-sampled' }));
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0].response_cache).toEqual({ ttl_secs: 600, sampled: true });
    view.unmount();

    const cached = { ...model, response_cache: { ttl_secs: 60, across_tokens: true } };
    renderWith(<ModelForm model={cached} providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    expect(screen.getByLabelText('cache-ttl_secs')).toHaveValue('60');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(2));
    expect(onSubmit.mock.calls[1][0].response_cache).toEqual({ ttl_secs: 60, across_tokens: true });
  });

  it('keeps what it does not edit (route capabilities) and sends the retry policy', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    const declared = {
      ...model,
      routes: [{ ...model.routes[0], capabilities: { reasoning: 'effort' as const, max_output_tokens: 32000 } }],
      retry: { max_attempts: 2, bench_when_all_open: true },
    };
    renderWith(<ModelForm model={declared} providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    const user = userEvent.setup();
    expect(screen.getByLabelText('retry-max_attempts')).toHaveValue('2');
    fill(screen.getByLabelText('retry-retry_on'), '429, 503');
    fill(screen.getByLabelText('retry-breaker_cooldown_secs'), '10');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    const body = onSubmit.mock.calls[0][0];
    expect(body.routes[0].capabilities).toEqual({ reasoning: 'effort', max_output_tokens: 32000 });
    expect(body.retry).toEqual({ max_attempts: 2, retry_on: [429, 503], breaker_cooldown_secs: 10, bench_when_all_open: true });
  });

  it('edits an existing model and can drop its price', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<ModelForm model={model} providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    const user = userEvent.setup();
    expect(screen.getByLabelText('price-input_per_million')).toHaveValue('2');
    await user.click(screen.getByRole('switch', { name: 'has-price' }));
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toMatchObject({ alias: 'gpt-test', price: null, routes: model.routes });
  });

  it('refuses a price that is not a decimal', async () => {
    const onSubmit = vi.fn();
    renderWith(<ModelForm providers={[provider]} keys={keys} onSubmit={onSubmit} />);
    const user = userEvent.setup();
    fill(screen.getByLabelText('Alias'), 'x');
    fill(screen.getByLabelText('route-0-upstream'), 'y');
    fill(screen.getByLabelText('price-input_per_million'), 'two');
    fill(screen.getByLabelText('price-output_per_million'), '1');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(document.querySelector('.ant-form-item-has-error')).not.toBeNull());
    expect(onSubmit).not.toHaveBeenCalled();
  });
});

describe('TokenForm', () => {
  it('sends limits and a budget; empty fields mean no limit', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<TokenForm modelAliases={['gpt-test']} onSubmit={onSubmit} />);
    const user = userEvent.setup();
    fill(screen.getByLabelText('Name'), 'CI');
    fill(screen.getByLabelText('rpm'), '60');
    fill(screen.getByLabelText('budget-amount'), '25');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toEqual({
      name: 'CI',
      allowed_models: [],
      rpm: 60,
      tpm: null,
      budget: { amount: '25', currency: 'USD', period: 'monthly' },
      expires_at: null,
      enabled: true,
    });
  });

  it('keeps an existing token fields on edit', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<TokenForm token={token} modelAliases={[]} onSubmit={onSubmit} />);
    await userEvent.setup().click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0][0]).toMatchObject({
      name: 'CI pipeline',
      allowed_models: ['gpt-*'],
      rpm: 120,
      budget: { amount: '25', currency: 'USD', period: 'monthly' },
    });
  });
});

describe('SecretModal', () => {
  it('shows the secret once with snippets for every client', async () => {
    localStorage.setItem('axongate.gatewayUrl', 'http://gw.example:8080');
    renderWith(<SecretModal secret="axg-secret-value" name="CI" model="gpt-test" onClose={() => undefined} />);
    expect(await screen.findByTestId('token-secret')).toHaveValue('axg-secret-value');
    expect(screen.getByText('Copy the token now: it is shown only once.')).toBeInTheDocument();
    const curl = screen.getByTestId('snippet-curlChat');
    expect(curl.textContent).toContain('http://gw.example:8080/v1/chat/completions');
    expect(curl.textContent).toContain('Bearer axg-secret-value');
    expect(curl.textContent).toContain('"model":"gpt-test"');
    expect((await screen.findByTestId('snippet-claudeCode')).textContent).toContain(
      'ANTHROPIC_AUTH_TOKEN=axg-secret-value claude --model gpt-test',
    );
    // The same snippets as the Get started page, Codex included.
    expect(screen.getByText('Codex: ~/.codex/config.toml')).toBeInTheDocument();
    expect((await screen.findByTestId('snippet-codex')).textContent).toContain('model = "gpt-test"');
  });

  it('builds the SDK snippets against the gateway', () => {
    const code = Object.fromEntries(snippets('http://h:8080/', 'axg-x', 'm').map((snippet) => [snippet.key, snippet.text]));
    expect(code.openai).toContain('base_url="http://h:8080/v1"');
    expect(code.anthropic).toContain('base_url="http://h:8080"');
    expect(code.claudeCode).toContain('ANTHROPIC_BASE_URL=http://h:8080');
  });
});

describe('UserForm', () => {
  it('requires a password for a new user and sends the role', async () => {
    const onSubmit = vi.fn().mockResolvedValue(undefined);
    renderWith(<UserForm onSubmit={onSubmit} />);
    const user = userEvent.setup();
    fill(screen.getByLabelText('Username'), 'vera');
    fill(screen.getByLabelText('Password'), 'short');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('At least 8 characters')).toBeInTheDocument();
    fill(screen.getByLabelText('Password'), 'long-enough-1');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() =>
      expect(onSubmit).toHaveBeenCalledWith({
        username: 'vera',
        display_name: '',
        role: 'member',
        enabled: true,
        password: 'long-enough-1',
      }),
    );
    void within;
  });
});
