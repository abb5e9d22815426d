// The field-level difference between an audit entry's `before` and `after` states.

export interface FieldChange {
  path: string;
  before: unknown;
  after: unknown;
}

function flatten(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) out.set(prefix, value);
    for (const [key, inner] of entries) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
    return;
  }
  if (prefix) out.set(prefix, value);
}

/** Every leaf path whose value differs (arrays compare as a whole). */
export function diff(before: unknown, after: unknown): FieldChange[] {
  const left = new Map<string, unknown>();
  const right = new Map<string, unknown>();
  flatten(before ?? {}, '', left);
  flatten(after ?? {}, '', right);
  const paths = [...new Set([...left.keys(), ...right.keys()])].sort();
  return paths
    .filter((path) => JSON.stringify(left.get(path)) !== JSON.stringify(right.get(path)))
    .map((path) => ({ path, before: left.get(path), after: right.get(path) }));
}

/** Money fields of events are integer nano-units; they are shown as the decimals operators enter. */
const MONEY_FIELD = /(_per_million|(^|\.)amount)$/;

function nanosToDecimal(nanos: number): string {
  const negative = nanos < 0;
  const digits = Math.abs(nanos).toString().padStart(10, '0');
  const whole = digits.slice(0, -9);
  const fraction = digits.slice(-9).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export function show(value: unknown, path = ''): string {
  if (value === undefined) return '';
  if (typeof value === 'number' && Number.isInteger(value) && MONEY_FIELD.test(path)) return nanosToDecimal(value);
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
