import { useEffect, useMemo, useState } from 'react';
import { App, Button, Card, Col, Descriptions, Row, Select, Space, Statistic, Table, Tag, Typography } from 'antd';
import { DownloadOutlined, ReloadOutlined } from '@ant-design/icons';
import dayjs from 'dayjs';
import { useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { download } from '../api/client';
import { csvPath, useBreakdown, useRequestLog, useSummary, useTimeseries, type AnalyticsFilters } from '../api/analytics';
import { useAll } from '../api/hooks';
import type { BreakdownBy, Model, Provider, RequestRow, Team, Token, User } from '../api/types';
import { useSession } from '../auth/session';
import { canRead, seesEveryone } from '../auth/permissions';
import { ErrorAlert, errorText } from '../components/errors';
import { BreakdownChart, LatencyChart, RequestsCostChart } from '../components/charts';
import { RangeControls, useRange } from '../components/RangeControls';
import { ConfigAtDrawer } from '../components/ConfigAt';
import { bucketFor } from '../components/range';
import { formatMoney, formatMs, formatNumber, formatPercent, formatTime, money } from '../format';

const OUTCOMES = ['success', 'error', 'cancelled'];
const BREAKDOWNS: BreakdownBy[] = [
  'model',
  'provider',
  'provider_key',
  'token',
  'user',
  'team',
  'client_protocol',
  'outcome',
  'error_kind',
];

type Choice = { model?: string; provider?: string; token?: string; user?: string; team?: string; outcome?: string };

export function RequestLogTable({
  rows,
  total,
  loading,
  page,
  onPage,
  label,
  onConfig,
}: {
  rows: RequestRow[];
  total: number;
  loading?: boolean;
  page: { current: number; pageSize: number };
  onPage: (current: number, pageSize: number) => void;
  label?: { token: (id: string) => string; provider: (id: string) => string; team?: (id: string) => string };
  /** Opens the config a request was served under (for those who may read the config). */
  onConfig?: (seq: number) => void;
}) {
  const { t } = useTranslation();
  return (
    <Table<RequestRow>
      rowKey="request_id"
      size="small"
      loading={loading}
      dataSource={rows}
      scroll={{ x: 1300 }}
      pagination={{ ...page, total, showSizeChanger: true, showTotal: (count) => t('common.total', { count }), onChange: onPage }}
      expandable={{
        expandedRowRender: (row) => (
          <Descriptions size="small" column={3} bordered>
            <Descriptions.Item label={t('usage.requestId')}>{row.request_id}</Descriptions.Item>
            <Descriptions.Item label={t('usage.upstream')}>{row.upstream_model}</Descriptions.Item>
            <Descriptions.Item label={t('usage.key')}>{row.provider_key_id}</Descriptions.Item>
            <Descriptions.Item label={t('usage.protocol')}>{row.client_protocol}</Descriptions.Item>
            <Descriptions.Item label={t('usage.stream')}>{row.stream ? t('common.yes') : t('common.no')}</Descriptions.Item>
            <Descriptions.Item
              label={t('usage.cacheTokens')}
            >{`${formatNumber(row.cache_read_tokens)} / ${formatNumber(row.cache_write_tokens)}`}</Descriptions.Item>
            <Descriptions.Item label={t('usage.ttfb')}>{formatMs(row.ttfb_ms)}</Descriptions.Item>
            <Descriptions.Item label={t('usage.user')}>{row.user_id}</Descriptions.Item>
            <Descriptions.Item label={t('usage.team')}>
              <span data-testid="usage-detail-team">{row.team_id ? (label?.team ? label.team(row.team_id) : row.team_id) : '—'}</span>
            </Descriptions.Item>
            <Descriptions.Item label={t('usage.errorKind')}>{row.error_kind ?? '—'}</Descriptions.Item>
            <Descriptions.Item label={t('usage.traceId')}>
              {row.trace_id ? (
                <Typography.Text code copyable data-testid="trace-id">
                  {row.trace_id}
                </Typography.Text>
              ) : (
                '—'
              )}
            </Descriptions.Item>
            <Descriptions.Item label={t('usage.priceVersion')}>{row.price_version ?? '—'}</Descriptions.Item>
            <Descriptions.Item label={t('usage.configSeq')}>
              {row.config_seq != null && onConfig ? (
                <Button
                  size="small"
                  type="link"
                  data-testid="config-seq"
                  title={t('configAt.open')}
                  onClick={() => onConfig(row.config_seq!)}
                >
                  {row.config_seq}
                </Button>
              ) : (
                (row.config_seq ?? '—')
              )}
            </Descriptions.Item>
            <Descriptions.Item label={t('usage.cacheHit')}>
              {row.cache_hit && row.saved ? (
                <span data-testid="usage-detail-cache">
                  <Tag color="green">{t('usage.cacheHitTag')}</Tag>
                  {t('usage.cacheSaved', {
                    input: formatNumber(row.saved.input_tokens),
                    output: formatNumber(row.saved.output_tokens),
                    cost: formatMoney(row.saved.cost, row.currency || undefined),
                  })}
                </span>
              ) : (
                '—'
              )}
            </Descriptions.Item>
            <Descriptions.Item label={t('usage.routing')}>
              <span data-testid="usage-detail-routing">
                {row.routing_strategy ?? t('models.strategyWeighted')}
                {row.routing_session ? (
                  <>
                    {' · '}
                    <Typography.Text code title={t('usage.routingSession')}>
                      {row.routing_session}
                    </Typography.Text>
                  </>
                ) : null}
              </span>
            </Descriptions.Item>
          </Descriptions>
        ),
      }}
      columns={[
        { title: t('usage.time'), dataIndex: 'occurred_at', render: formatTime, width: 170 },
        { title: t('usage.model'), dataIndex: 'model_alias', render: (alias: string) => <Typography.Text code>{alias}</Typography.Text> },
        { title: t('usage.provider'), dataIndex: 'provider_id', render: (id: string) => (label ? label.provider(id) : id) },
        { title: t('usage.token'), dataIndex: 'token_id', render: (id: string) => (label ? label.token(id) : id) },
        {
          title: t('usage.outcome'),
          dataIndex: 'outcome',
          render: (outcome: string, row) => (
            <Tag color={outcome === 'success' ? 'green' : outcome === 'cancelled' ? 'orange' : 'red'}>
              {outcome}
              {row.error_kind ? `: ${row.error_kind}` : ''}
            </Tag>
          ),
        },
        { title: t('usage.status'), dataIndex: 'http_status' },
        { title: t('usage.inputTokens'), dataIndex: 'input_tokens', align: 'right', render: formatNumber },
        { title: t('usage.outputTokens'), dataIndex: 'output_tokens', align: 'right', render: formatNumber },
        { title: t('usage.cost'), dataIndex: 'cost', align: 'right', render: (cost: string, row) => formatMoney(cost, row.currency) },
        { title: t('usage.latency'), dataIndex: 'latency_ms', align: 'right', render: formatMs },
        { title: t('usage.attempts'), dataIndex: 'attempts', align: 'right' },
        {
          title: t('usage.trace'),
          dataIndex: 'trace_id',
          width: 100,
          render: (id: string | null) =>
            id ? (
              <Typography.Text code title={id}>
                {id.slice(0, 8)}
              </Typography.Text>
            ) : (
              '—'
            ),
        },
      ]}
    />
  );
}

export function UsagePage() {
  const { t } = useTranslation();
  const { user } = useSession();
  const { message } = App.useApp();
  const queryClient = useQueryClient();
  const role = user?.role;
  const everyone = seesEveryone(role);
  const range = useRange('last24h');
  const { preset, moveOn } = range;
  const [choice, setChoice] = useState<Choice>({});
  const [by, setBy] = useState<BreakdownBy>('model');
  const [page, setPage] = useState({ current: 1, pageSize: 20 });
  const [exporting, setExporting] = useState(false);
  const [configSeq, setConfigSeq] = useState<number | null>(null);

  // A preset ("last 24 hours") rolls: it ends now, so requests made since the page opened show
  // up within a minute without pressing Refresh.
  useEffect(() => {
    if (!preset) return undefined;
    const timer = window.setInterval(moveOn, 60_000);
    return () => window.clearInterval(timer);
  }, [preset, moveOn]);
  const { from, to } = range;
  const fromMs = from.valueOf();
  const toMs = to.valueOf();
  const filters: AnalyticsFilters = useMemo(
    () => ({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), ...choice }),
    [fromMs, toMs, choice],
  );
  const bucket = bucketFor(from, to);
  const summary = useSummary(filters);
  const series = useTimeseries(filters, bucket);
  const breakdown = useBreakdown(filters, by, 10);
  const log = useRequestLog(filters, page.pageSize, (page.current - 1) * page.pageSize);

  const models = useAll<Model>('/models', canRead(role, 'model'));
  const providers = useAll<Provider>('/providers', canRead(role, 'provider'));
  const tokens = useAll<Token>('/tokens');
  const users = useAll<User>('/users', everyone && canRead(role, 'user'));
  const teams = useAll<Team>('/teams', canRead(role, 'team'));
  const tokenName = (id: string) => tokens.data?.find((token) => token.id === id)?.name ?? id;
  const providerName = (id: string) => providers.data?.find((provider) => provider.id === id)?.name ?? id;
  const userName = (id: string) => users.data?.find((candidate) => candidate.id === id)?.username ?? id;
  const teamName = (id: string) => teams.data?.find((team) => team.id === id)?.name ?? id;
  const keyLabel = (key: string) => {
    if (!key) return '—';
    if (by === 'token') return tokenName(key);
    if (by === 'provider') return providerName(key);
    if (by === 'user') return userName(key);
    if (by === 'team') return teamName(key);
    return key;
  };

  const set = (patch: Choice) => {
    setChoice({ ...choice, ...patch });
    setPage({ ...page, current: 1 });
  };
  const select = (name: keyof Choice, placeholder: string, options: { value: string; label: string }[]) => (
    <Select
      allowClear
      showSearch
      optionFilterProp="label"
      aria-label={name}
      placeholder={placeholder}
      style={{ width: 170 }}
      value={choice[name]}
      options={options}
      onChange={(value) => set({ [name]: value })}
    />
  );
  const data = summary.data;

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('usage.title')}
      </Typography.Title>
      <Card size="small">
        <Space wrap>
          <RangeControls {...range.controls} />
          {select(
            'model',
            t('usage.model'),
            (models.data ?? []).map((model) => ({ value: model.alias, label: model.alias })),
          )}
          {canRead(role, 'provider') &&
            select(
              'provider',
              t('usage.provider'),
              (providers.data ?? []).map((provider) => ({ value: provider.id, label: provider.name })),
            )}
          {select(
            'token',
            t('usage.token'),
            (tokens.data ?? []).map((token) => ({ value: token.id, label: token.name })),
          )}
          {everyone &&
            canRead(role, 'user') &&
            select(
              'user',
              t('usage.user'),
              (users.data ?? []).map((candidate) => ({ value: candidate.id, label: candidate.username })),
            )}
          {canRead(role, 'team') &&
            select(
              'team',
              t('usage.team'),
              (teams.data ?? []).map((team) => ({ value: team.id, label: team.name })),
            )}
          {select(
            'outcome',
            t('usage.outcome'),
            OUTCOMES.map((outcome) => ({ value: outcome, label: outcome })),
          )}
          <Button
            icon={<ReloadOutlined />}
            onClick={() => {
              moveOn();
              void queryClient.invalidateQueries({ queryKey: ['analytics'] });
            }}
          >
            {t('common.refresh')}
          </Button>
          <Button
            icon={<DownloadOutlined />}
            loading={exporting}
            onClick={() => {
              setExporting(true);
              download(csvPath(filters), `axongate-requests-${dayjs().format('YYYYMMDD-HHmmss')}.csv`)
                .catch((error) => message.error(errorText(error)))
                .finally(() => setExporting(false));
            }}
          >
            {t('usage.exportCsv')}
          </Button>
        </Space>
      </Card>
      <ErrorAlert error={summary.error} />
      <Row gutter={[16, 16]}>
        {[
          [t('usage.requests'), formatNumber(data?.requests), 'usage-requests'],
          [t('usage.errorRate'), formatPercent(data?.error_rate), 'usage-error-rate'],
          [t('usage.inputTokens'), formatNumber(data?.input_tokens), 'usage-input-tokens'],
          [t('usage.outputTokens'), formatNumber(data?.output_tokens), 'usage-output-tokens'],
          [t('usage.cost'), money(data?.cost), 'usage-cost'],
          [t('usage.cancelled'), formatNumber(data?.cancelled), 'usage-cancelled'],
          [
            t('usage.cacheHits'),
            data?.cache ? `${formatNumber(data.cache.hits)} · ${money(data.cache.saved_cost)}` : '—',
            'usage-cache-hits',
          ],
        ].map(([title, value, testId]) => (
          <Col xs={12} md={8} xl={4} key={testId}>
            <Card size="small" loading={summary.isLoading}>
              <Statistic
                title={title}
                value={value}
                valueRender={() => (
                  <span data-testid={testId} style={{ fontSize: 20, whiteSpace: 'nowrap' }}>
                    {value}
                  </span>
                )}
              />
            </Card>
          </Col>
        ))}
      </Row>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={16}>
          <Card size="small" title={t('usage.timeseries')}>
            <ErrorAlert error={series.error} />
            {series.data && (
              <RequestsCostChart points={series.data.points} bucket={series.data.bucket} from={filters.from} to={filters.to} />
            )}
          </Card>
        </Col>
        <Col xs={24} xl={8}>
          <Card size="small" title={t('usage.percentiles')}>
            <Descriptions column={1} size="small" bordered>
              {(['p50', 'p95', 'p99'] as const).map((name) => (
                <Descriptions.Item key={name} label={name}>
                  <span data-testid={`latency-${name}`}>{formatMs(data?.latency_ms[name])}</span> · {t('usage.ttfb')}{' '}
                  {formatMs(data?.ttfb_ms[name])}
                </Descriptions.Item>
              ))}
            </Descriptions>
            {series.data && (
              <LatencyChart points={series.data.points} bucket={series.data.bucket} from={filters.from} to={filters.to} height={160} />
            )}
          </Card>
        </Col>
      </Row>
      <Card
        size="small"
        title={t('usage.breakdown')}
        extra={
          <Select<BreakdownBy>
            aria-label="breakdown-by"
            value={by}
            style={{ width: 180 }}
            onChange={setBy}
            options={BREAKDOWNS.filter((option) => everyone || (option !== 'user' && option !== 'provider_key')).map((option) => ({
              value: option,
              label: t(`usage.byOptions.${option}`),
            }))}
          />
        }
      >
        <ErrorAlert error={breakdown.error} />
        {breakdown.data && <BreakdownChart rows={breakdown.data.rows} metric="requests" label={keyLabel} />}
      </Card>
      <Card size="small" title={t('usage.log')}>
        <ErrorAlert error={log.error} />
        <RequestLogTable
          rows={log.data?.rows ?? []}
          total={log.data?.total ?? 0}
          loading={log.isFetching}
          page={page}
          onPage={(current, pageSize) => setPage({ current, pageSize })}
          label={{ token: tokenName, provider: providerName, team: teamName }}
          onConfig={canRead(role, 'config') ? setConfigSeq : undefined}
        />
      </Card>
      <ConfigAtDrawer seq={configSeq} onClose={() => setConfigSeq(null)} />
    </Space>
  );
}
