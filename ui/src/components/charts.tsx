import { Empty } from 'antd';
import dayjs from 'dayjs';
import { Area, Bar, BarChart, CartesianGrid, ComposedChart, Legend, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useTranslation } from 'react-i18next';
import type { BreakdownRow, Bucket, TimePoint } from '../api/types';

const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * The series with a zero point for every empty bucket between `from` and `to`, so that a gap in
 * traffic shows as zero rather than as a line drawn across it. Buckets are UTC-aligned like the
 * API's.
 */
export function fillBuckets(points: TimePoint[], bucket: Bucket, from?: string, to?: string): TimePoint[] {
  if (!from || !to) return points;
  const step = BUCKET_MS[bucket];
  const start = Math.floor(new Date(from).getTime() / step) * step;
  const end = new Date(to).getTime();
  if (!Number.isFinite(start) || !Number.isFinite(end) || (end - start) / step > 2000) return points;
  const byTime = new Map(points.map((point) => [new Date(point.t).getTime(), point]));
  const filled: TimePoint[] = [];
  for (let at = start; at <= end; at += step) {
    filled.push(
      byTime.get(at) ?? {
        t: new Date(at).toISOString(),
        requests: 0,
        success: 0,
        error: 0,
        cancelled: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost: '0',
        latency_p95_ms: null,
      },
    );
    byTime.delete(at);
  }
  // Points the grid did not meet (another alignment) are kept rather than dropped.
  return [...filled, ...byTime.values()].sort((left, right) => new Date(left.t).getTime() - new Date(right.t).getTime());
}

const tickFormat = (bucket: Bucket) => (value: string) =>
  dayjs(value).format(bucket === 'day' ? 'MM-DD' : bucket === 'hour' ? 'MM-DD HH:mm' : 'HH:mm');

/** Requests (succeeded and failed, stacked) and cost on a second axis. */
export function RequestsCostChart({
  points,
  bucket,
  from,
  to,
  height = 280,
}: {
  points: TimePoint[];
  bucket: Bucket;
  from?: string;
  to?: string;
  height?: number;
}) {
  const { t } = useTranslation();
  if (points.length === 0) return <Empty description={t('usage.noData')} />;
  const data = fillBuckets(points, bucket, from, to).map((point) => ({ ...point, cost: Number(point.cost) }));
  return (
    <ResponsiveContainer width="100%" height={height}>
      <ComposedChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="t" tickFormatter={tickFormat(bucket)} minTickGap={24} />
        <YAxis yAxisId="requests" allowDecimals={false} />
        <YAxis yAxisId="cost" orientation="right" />
        <Tooltip labelFormatter={(value) => dayjs(value as string).format('YYYY-MM-DD HH:mm')} />
        <Legend />
        <Area
          yAxisId="requests"
          type="monotone"
          dataKey="success"
          name={t('usage.success')}
          stackId="r"
          stroke="#3358d4"
          fill="#3358d4"
          fillOpacity={0.35}
          isAnimationActive={false}
        />
        <Area
          yAxisId="requests"
          type="monotone"
          dataKey="error"
          name={t('usage.errors')}
          stackId="r"
          stroke="#d4380d"
          fill="#d4380d"
          fillOpacity={0.45}
          isAnimationActive={false}
        />
        <Line yAxisId="cost" type="monotone" dataKey="cost" name={t('usage.cost')} stroke="#13a8a8" dot={false} isAnimationActive={false} />
      </ComposedChart>
    </ResponsiveContainer>
  );
}

export function LatencyChart({
  points,
  bucket,
  from,
  to,
  height = 220,
}: {
  points: TimePoint[];
  bucket: Bucket;
  from?: string;
  to?: string;
  height?: number;
}) {
  const { t } = useTranslation();
  if (points.length === 0) return <Empty description={t('usage.noData')} />;
  return (
    <ResponsiveContainer width="100%" height={height}>
      <ComposedChart data={fillBuckets(points, bucket, from, to)} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="t" tickFormatter={tickFormat(bucket)} minTickGap={24} />
        <YAxis unit=" ms" />
        <Tooltip labelFormatter={(value) => dayjs(value as string).format('YYYY-MM-DD HH:mm')} />
        <Line type="monotone" dataKey="latency_p95_ms" name="p95" stroke="#722ed1" dot={false} isAnimationActive={false} connectNulls />
      </ComposedChart>
    </ResponsiveContainer>
  );
}

/** A horizontal bar per key of a breakdown. */
export function BreakdownChart({
  rows,
  metric,
  height,
  label,
}: {
  rows: BreakdownRow[];
  metric: 'requests' | 'errors' | 'cost' | 'input_tokens' | 'output_tokens';
  height?: number;
  label?: (key: string) => string;
}) {
  const { t } = useTranslation();
  const data = rows.map((row) => ({
    name: label ? label(row.key) : row.key || '—',
    value: metric === 'cost' ? Number(row.cost) : row[metric],
  }));
  if (data.length === 0) return <Empty description={t('usage.noData')} />;
  return (
    <ResponsiveContainer width="100%" height={height ?? Math.max(160, data.length * 32 + 40)}>
      <BarChart data={data} layout="vertical" margin={{ top: 8, right: 24, bottom: 0, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" horizontal={false} />
        <XAxis type="number" allowDecimals={metric === 'cost'} />
        <YAxis type="category" dataKey="name" width={140} />
        <Tooltip />
        <Bar
          dataKey="value"
          name={t(`usage.${metric === 'input_tokens' ? 'inputTokens' : metric === 'output_tokens' ? 'outputTokens' : metric}`)}
          fill={metric === 'errors' ? '#d4380d' : '#3358d4'}
          isAnimationActive={false}
        />
      </BarChart>
    </ResponsiveContainer>
  );
}
