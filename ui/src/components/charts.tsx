import { Empty } from 'antd';
import dayjs from 'dayjs';
import { Area, Bar, BarChart, CartesianGrid, ComposedChart, Legend, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useTranslation } from 'react-i18next';
import type { BreakdownRow, Bucket, TimePoint } from '../api/types';

const tickFormat = (bucket: Bucket) => (value: string) => dayjs(value).format(bucket === 'day' ? 'MM-DD' : bucket === 'hour' ? 'MM-DD HH:mm' : 'HH:mm');

/** Requests (succeeded and failed, stacked) and cost on a second axis. */
export function RequestsCostChart({ points, bucket, height = 280 }: { points: TimePoint[]; bucket: Bucket; height?: number }) {
  const { t } = useTranslation();
  if (points.length === 0) return <Empty description={t('usage.noData')} />;
  const data = points.map((point) => ({ ...point, cost: Number(point.cost) }));
  return (
    <ResponsiveContainer width="100%" height={height}>
      <ComposedChart data={data} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="t" tickFormatter={tickFormat(bucket)} minTickGap={24} />
        <YAxis yAxisId="requests" allowDecimals={false} />
        <YAxis yAxisId="cost" orientation="right" />
        <Tooltip labelFormatter={(value) => dayjs(value as string).format('YYYY-MM-DD HH:mm')} />
        <Legend />
        <Area yAxisId="requests" type="monotone" dataKey="success" name={t('usage.success')} stackId="r" stroke="#3358d4" fill="#3358d4" fillOpacity={0.35} isAnimationActive={false} />
        <Area yAxisId="requests" type="monotone" dataKey="error" name={t('usage.errors')} stackId="r" stroke="#d4380d" fill="#d4380d" fillOpacity={0.45} isAnimationActive={false} />
        <Line yAxisId="cost" type="monotone" dataKey="cost" name={t('usage.cost')} stroke="#13a8a8" dot={false} isAnimationActive={false} />
      </ComposedChart>
    </ResponsiveContainer>
  );
}

export function LatencyChart({ points, bucket, height = 220 }: { points: TimePoint[]; bucket: Bucket; height?: number }) {
  const { t } = useTranslation();
  if (points.length === 0) return <Empty description={t('usage.noData')} />;
  return (
    <ResponsiveContainer width="100%" height={height}>
      <ComposedChart data={points} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
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
export function BreakdownChart({ rows, metric, height, label }: { rows: BreakdownRow[]; metric: 'requests' | 'errors' | 'cost' | 'input_tokens' | 'output_tokens'; height?: number; label?: (key: string) => string }) {
  const { t } = useTranslation();
  const data = rows.map((row) => ({ name: label ? label(row.key) : row.key || '—', value: metric === 'cost' ? Number(row.cost) : row[metric] }));
  if (data.length === 0) return <Empty description={t('usage.noData')} />;
  return (
    <ResponsiveContainer width="100%" height={height ?? Math.max(160, data.length * 32 + 40)}>
      <BarChart data={data} layout="vertical" margin={{ top: 8, right: 24, bottom: 0, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" horizontal={false} />
        <XAxis type="number" allowDecimals={metric === 'cost'} />
        <YAxis type="category" dataKey="name" width={140} />
        <Tooltip />
        <Bar dataKey="value" name={t(`usage.${metric === 'input_tokens' ? 'inputTokens' : metric === 'output_tokens' ? 'outputTokens' : metric}`)} fill={metric === 'errors' ? '#d4380d' : '#3358d4'} isAnimationActive={false} />
      </BarChart>
    </ResponsiveContainer>
  );
}
