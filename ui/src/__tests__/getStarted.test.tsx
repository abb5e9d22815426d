import { fireEvent, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { GetStartedPage } from '../pages/GetStarted';
import { snippets } from '../components/snippets';
import { model } from '../test/fixtures';
import { mockApi, page, renderWith } from '../test/utils';

const TOKEN = 'axg-typed-secret-4711';
const models = [model, { ...model, id: 'm2', alias: 'claude-sonnet', version: 1 }];

const snippet = (key: string) => screen.getByTestId(`snippet-${key}`).textContent ?? '';

describe('GetStartedPage', () => {
  it('fills every snippet with the picked model, the typed token and base URL, and keeps the token to itself', async () => {
    const fetchMock = mockApi({ 'GET /api/v1/models': page(models) });
    renderWith(<GetStartedPage />, { role: 'admin' });
    const user = userEvent.setup();
    expect(await screen.findByRole('heading', { name: 'Get started' })).toBeInTheDocument();
    // The first enabled model is preselected; the token is a placeholder until typed.
    await waitFor(() => expect(snippet('curlChat')).toContain('"model":"gpt-test"'));
    expect(snippet('curlChat')).toContain('Bearer axg-…');
    expect(document.body.textContent).not.toContain(TOKEN);

    await user.click(screen.getByLabelText('Model'));
    fireEvent.click(await screen.findByTitle('claude-sonnet'));
    const tokenInput = screen.getByLabelText('Token');
    expect(tokenInput).toHaveAttribute('type', 'password');
    fireEvent.change(tokenInput, { target: { value: TOKEN } });
    fireEvent.change(screen.getByLabelText('Gateway base URL'), { target: { value: 'https://gw.example.com/' } });

    const base = 'https://gw.example.com';
    expect(snippet('curlChat')).toContain(`curl ${base}/v1/chat/completions -H "Authorization: Bearer ${TOKEN}"`);
    expect(snippet('curlChat')).toContain('"model":"claude-sonnet"');
    expect(snippet('curlMessages')).toContain(`curl ${base}/v1/messages -H "x-api-key: ${TOKEN}" -H 'anthropic-version: 2023-06-01'`);
    expect(snippet('curlMessages')).toContain('"model":"claude-sonnet"');
    expect(snippet('openai')).toContain(`OpenAI(base_url="${base}/v1", api_key="${TOKEN}")`);
    expect(snippet('openai')).toContain('client.chat.completions.create(model="claude-sonnet"');
    expect(snippet('anthropic')).toContain(`Anthropic(base_url="${base}", api_key="${TOKEN}")`);
    expect(snippet('anthropic')).toContain('client.messages.create(model="claude-sonnet"');
    expect(snippet('gemini')).toContain(`genai.Client(api_key="${TOKEN}", http_options={"base_url": "${base}"})`);
    expect(snippet('gemini')).toContain('client.models.generate_content(model="claude-sonnet"');
    expect(snippet('claudeCode')).toBe(`ANTHROPIC_BASE_URL=${base} ANTHROPIC_AUTH_TOKEN=${TOKEN} claude --model claude-sonnet`);
    expect(snippet('codex')).toBe(
      [
        'model = "claude-sonnet"',
        'model_provider = "axongate"',
        '',
        '[model_providers.axongate]',
        'name = "AxonGate"',
        `base_url = "${base}/v1"`,
        'env_key = "AXONGATE_API_KEY"',
        'wire_api = "responses"',
      ].join('\n'),
    );
    expect(snippet('codexRun')).toBe(`AXONGATE_API_KEY=${TOKEN} codex`);

    // Never stored, never sent to the admin API.
    expect(JSON.stringify({ ...localStorage })).not.toContain(TOKEN);
    for (const [input, init] of fetchMock.mock.calls) {
      expect(String(input)).not.toContain(TOKEN);
      expect(JSON.stringify(init ?? {})).not.toContain(TOKEN);
    }
  });

  it('lets a member, who cannot list models, type an alias', async () => {
    const fetchMock = mockApi({});
    renderWith(<GetStartedPage />, { role: 'member' });
    fireEvent.change(await screen.findByLabelText('Model'), { target: { value: 'my-alias' } });
    expect(snippet('claudeCode')).toContain('claude --model my-alias');
    expect(fetchMock.mock.calls.some(([input]) => String(input).includes('/models'))).toBe(false);
  });

  it('builds the snippets without a trailing slash on the base URL', () => {
    const all = snippets('http://h:8080/', 'axg-x', 'm');
    expect(all.map((item) => item.key)).toEqual([
      'curlChat',
      'curlMessages',
      'openai',
      'anthropic',
      'gemini',
      'claudeCode',
      'codex',
      'codexRun',
    ]);
    expect(all.find((item) => item.key === 'codex')!.text).toContain('base_url = "http://h:8080/v1"');
  });
});
