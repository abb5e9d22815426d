import dayjs from 'dayjs';
import type { Money } from './api/types';

/** A decimal string of money, rounded for display (the API keeps the exact value). */
export function formatMoney(amount: string | number | null | undefined, currency?: string): string {
  if (amount === null || amount === undefined || amount === '') return '—';
  const value = typeof amount === 'number' ? amount : Number(amount);
  if (!Number.isFinite(value)) return `${amount}${currency ? ` ${currency}` : ''}`;
  const digits = value !== 0 && Math.abs(value) < 1 ? 6 : 2;
  const text = value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: digits });
  return currency ? `${text} ${currency}` : text;
}

export const money = (value: Money | null | undefined) => (value ? formatMoney(value.amount, value.currency) : '—');

export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value.toLocaleString();
}

export function formatPercent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '—';
  return `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.001 ? 3 : 1)}%`;
}

export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

export function formatTime(value: string | null | undefined): string {
  if (!value) return '—';
  const at = dayjs(value);
  return at.isValid() ? at.format('YYYY-MM-DD HH:mm:ss') : value;
}

export function fromNow(value: string | null | undefined): string {
  if (!value) return '—';
  const at = dayjs(value);
  return at.isValid() ? at.format('YYYY-MM-DD HH:mm') : value;
}
