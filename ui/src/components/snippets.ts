// The paste-ready client snippets (curl, the OpenAI, Anthropic and Gen AI SDKs, Claude Code, Codex) for
// a gateway address, a token and a model: one definition for the Get started page and the
// token-created dialog, matching what `compose/local start` prints and docs/clients.md.

const GATEWAY_KEY = 'axongate.gatewayUrl';

/** The ingress address for the snippets: remembered, else the admin host on ingress's port. */
export function defaultGatewayUrl(): string {
  const stored = localStorage.getItem(GATEWAY_KEY);
  if (stored) return stored;
  return `${window.location.protocol}//${window.location.hostname}:8080`;
}

/** Remembers the ingress address (not a secret) for the next snippets. */
export function rememberGatewayUrl(url: string): void {
  localStorage.setItem(GATEWAY_KEY, url);
}

/** Placeholders shown in the snippets until the user fills the fields in. */
export const TOKEN_PLACEHOLDER = 'axg-…';
export const MODEL_PLACEHOLDER = '<model-alias>';

export interface Snippet {
  key: 'curlChat' | 'curlMessages' | 'openai' | 'anthropic' | 'gemini' | 'claudeCode' | 'codex' | 'codexRun';
  language: string;
  text: string;
}

/** The snippets for a base URL (no trailing /v1), a token and a model alias. */
export function snippets(baseUrl: string, token: string, model: string): Snippet[] {
  const base = baseUrl.trim().replace(/\/+$/, '');
  return [
    {
      key: 'curlChat',
      language: 'sh',
      text:
        `curl ${base}/v1/chat/completions -H "Authorization: Bearer ${token}" \\\n` +
        `     -H 'content-type: application/json' -d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}]}'`,
    },
    {
      key: 'curlMessages',
      language: 'sh',
      text:
        `curl ${base}/v1/messages -H "x-api-key: ${token}" -H 'anthropic-version: 2023-06-01' \\\n` +
        `     -H 'content-type: application/json' -d '{"model":"${model}","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]}'`,
    },
    {
      key: 'openai',
      language: 'python',
      text: [
        'from openai import OpenAI',
        `client = OpenAI(base_url="${base}/v1", api_key="${token}")`,
        `reply = client.chat.completions.create(model="${model}", messages=[{"role": "user", "content": "Hello"}])`,
        'print(reply.choices[0].message.content)',
      ].join('\n'),
    },
    {
      key: 'anthropic',
      language: 'python',
      text: [
        'from anthropic import Anthropic',
        `client = Anthropic(base_url="${base}", api_key="${token}")`,
        `reply = client.messages.create(model="${model}", max_tokens=1024, messages=[{"role": "user", "content": "Hello"}])`,
        'print(reply.content[0].text)',
      ].join('\n'),
    },
    {
      key: 'gemini',
      language: 'python',
      text: [
        'from google import genai',
        `client = genai.Client(api_key="${token}", http_options={"base_url": "${base}"})`,
        `reply = client.models.generate_content(model="${model}", contents="Hello")`,
        'print(reply.text)',
      ].join('\n'),
    },
    {
      key: 'claudeCode',
      language: 'sh',
      text: `ANTHROPIC_BASE_URL=${base} ANTHROPIC_AUTH_TOKEN=${token} claude --model ${model}`,
    },
    {
      key: 'codex',
      language: 'toml',
      text: [
        `model = "${model}"`,
        'model_provider = "axongate"',
        '',
        '[model_providers.axongate]',
        'name = "AxonGate"',
        `base_url = "${base}/v1"`,
        'env_key = "AXONGATE_API_KEY"',
        'wire_api = "responses"',
      ].join('\n'),
    },
    { key: 'codexRun', language: 'sh', text: `AXONGATE_API_KEY=${token} codex` },
  ];
}
