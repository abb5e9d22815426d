import dayjs, { type Dayjs } from 'dayjs';
import type { Bucket } from '../api/types';

export type RangeKey = 'last1h' | 'last24h' | 'last7d' | 'last30d' | 'today';
export const RANGE_KEYS: RangeKey[] = ['last1h', 'last24h', 'last7d', 'last30d', 'today'];

export function rangeFor(key: RangeKey, now: Dayjs = dayjs()): [Dayjs, Dayjs] {
  switch (key) {
    case 'last1h':
      return [now.subtract(1, 'hour'), now];
    case 'last24h':
      return [now.subtract(24, 'hour'), now];
    case 'last7d':
      return [now.subtract(7, 'day'), now];
    case 'last30d':
      return [now.subtract(30, 'day'), now];
    case 'today':
      return [now.startOf('day'), now];
  }
}

/** A bucket that gives a readable number of points for the range. */
export function bucketFor(from: Dayjs, to: Dayjs): Bucket {
  const hours = to.diff(from, 'hour', true);
  if (hours <= 6) return 'minute';
  if (hours <= 24 * 7) return 'hour';
  return 'day';
}

export const iso = (at: Dayjs) => at.toISOString();
