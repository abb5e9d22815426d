import { useEffect, useMemo, useState } from 'react';
import { Card, Col, Row, Select, Space, Statistic, Typography } from 'antd';
import { SyncOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import { useBreakdown, useDashboard, useTimeseries } from '../api/analytics';
import { ErrorAlert } from '../components/errors';
import { BreakdownChart, RequestsCostChart } from '../components/charts';
import { RangeControls, useRange } from '../components/RangeControls';
import { bucketFor } from '../components/range';
import { formatMs, formatNumber, formatPercent, money } from '../format';

const REFRESH_CHOICES = [0, 10, 30, 60];

export function DashboardPage() {
  const { t } = useTranslation();
  const range = useRange('last24h');
  const { preset, from, to, moveOn } = range;
  const [refreshSeconds, setRefreshSeconds] = useState(30);
  // A preset range moves with the clock: it ends at `now`, which each refresh (and each change of
  // the preset or of the refresh interval) moves on.
  const refetchInterval = refreshSeconds > 0 ? refreshSeconds * 1000 : false;
  useEffect(() => {
    if (!refreshSeconds) return undefined;
    const timer = setInterval(moveOn, refreshSeconds * 1000);
    return () => clearInterval(timer);
  }, [refreshSeconds, moveOn]);
  const filters = useMemo(() => ({ from: from.toISOString(), to: to.toISOString() }), [from, to]);
  const bucket = bucketFor(from, to);
  const cards = useDashboard({ refetchInterval });
  // The charts follow `now` (a preset range is recomputed); a custom range is refetched.
  const chartRefresh = preset ? false : refetchInterval;
  const series = useTimeseries(filters, bucket, { refetchInterval: chartRefresh });
  const models = useBreakdown(filters, 'model', 10, { refetchInterval: chartRefresh });
  const errors = useBreakdown(filters, 'error_kind', 10, { refetchInterval: chartRefresh });
  const data = cards.data;
  const errorRows = (errors.data?.rows ?? []).filter((row) => row.key && row.errors > 0);

  const card = (title: string, value: React.ReactNode, testId: string, suffix?: string) => (
    <Col xs={24} sm={12} lg={6}>
      <Card size="small" loading={cards.isLoading}>
        <Statistic title={title} value={value as string} suffix={suffix} valueRender={() => <span data-testid={testId}>{value}</span>} />
      </Card>
    </Col>
  );

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('nav.dashboard')}
        </Typography.Title>
        <Space wrap>
          <RangeControls {...range.controls} />
          <Select
            aria-label={t('dashboard.autoRefresh')}
            value={refreshSeconds}
            style={{ width: 150 }}
            onChange={(value) => {
              setRefreshSeconds(value);
              moveOn();
            }}
            options={REFRESH_CHOICES.map((seconds) => ({
              value: seconds,
              label: seconds ? (
                <>
                  <SyncOutlined spin={false} /> {seconds} s
                </>
              ) : (
                `${t('dashboard.autoRefresh')}: ${t('dashboard.off')}`
              ),
            }))}
          />
        </Space>
      </Space>
      <ErrorAlert error={cards.error} />
      <Row gutter={[16, 16]}>
        {card(t('dashboard.activeProviders'), formatNumber(data?.active_providers), 'card-active-providers')}
        {card(t('dashboard.enabledModels'), formatNumber(data?.enabled_models), 'card-enabled-models')}
        {card(t('dashboard.healthyKeys'), data ? `${data.healthy_keys} / ${data.total_keys}` : '—', 'card-healthy-keys')}
        {card(t('dashboard.requestsToday'), formatNumber(data?.requests_today), 'card-requests-today')}
        {card(t('dashboard.spendToday'), money(data?.spend_today), 'card-spend-today')}
        {card(t('dashboard.errorRate'), formatPercent(data?.error_rate_today), 'card-error-rate')}
        {card(t('dashboard.p95'), formatMs(data?.latency_p95_ms_today), 'card-p95')}
        {card(t('dashboard.lastMinute'), formatNumber(data?.requests_last_minute), 'card-last-minute')}
      </Row>
      <Card title={t('dashboard.overTime')} size="small">
        <ErrorAlert error={series.error} />
        {series.data && <RequestsCostChart points={series.data.points} bucket={series.data.bucket} from={filters.from} to={filters.to} />}
      </Card>
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={12}>
          <Card title={t('dashboard.topModels')} size="small">
            <ErrorAlert error={models.error} />
            {models.data && <BreakdownChart rows={models.data.rows} metric="requests" />}
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card title={t('dashboard.errorsByKind')} size="small">
            <ErrorAlert error={errors.error} />
            {errors.data &&
              (errorRows.length ? (
                <BreakdownChart rows={errorRows} metric="errors" />
              ) : (
                <Typography.Text type="secondary">{t('dashboard.noErrors')}</Typography.Text>
              ))}
          </Card>
        </Col>
      </Row>
    </Space>
  );
}
