import { useMemo, useState } from 'react';
import { App, Button, Card, Drawer, Select, Space, Table, Tag, Typography } from 'antd';
import { DownloadOutlined, ReloadOutlined } from '@ant-design/icons';
import dayjs from 'dayjs';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { download, get } from '../api/client';
import { rerateCsvPath, useRerate, type RerateParams } from '../api/analytics';
import { useAll } from '../api/hooks';
import type { Model, PriceHistory, PriceVersion, RerateBy, RerateRow, Token, User } from '../api/types';
import { useSession } from '../auth/session';
import { canRead, seesEveryone } from '../auth/permissions';
import { ErrorAlert, errorText } from './errors';
import { RangeControls, useRange } from './RangeControls';
import { formatMoney, formatNumber, formatTime } from '../format';

const BY: RerateBy[] = ['model', 'token', 'user', 'day'];

/** A difference of money: signed, red when re-rating costs more, green when it costs less. */
function Difference({ amount, currency, testId }: { amount: string; currency?: string; testId?: string }) {
  const value = Number(amount);
  const text = formatMoney(amount, currency);
  if (!Number.isFinite(value) || value === 0) return <span data-testid={testId}>{text}</span>;
  return (
    <Typography.Text type={value > 0 ? 'danger' : 'success'} data-testid={testId}>
      {value > 0 ? `+${text}` : text}
    </Typography.Text>
  );
}

/**
 * What the requests for `alias` in a range would have cost at its price version `version`
 * (`GET /analytics/rerate`), next to what was charged, grouped by model, token, user or day.
 */
export function RerateTable({ alias, version }: { alias: string; version: number }) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const { user } = useSession();
  const role = user?.role;
  const range = useRange('last7d');
  const [by, setBy] = useState<RerateBy>('model');
  const [exporting, setExporting] = useState(false);
  const { from, to } = range;
  const fromMs = from.valueOf();
  const toMs = to.valueOf();
  const params: RerateParams = useMemo(
    () => ({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), model: alias, version, by }),
    [fromMs, toMs, alias, version, by],
  );
  const rerate = useRerate(params);
  const tokens = useAll<Token>('/tokens', by === 'token');
  const users = useAll<User>('/users', by === 'user' && seesEveryone(role) && canRead(role, 'user'));
  const keyLabel = (key: string) => {
    if (by === 'token') return tokens.data?.find((token) => token.id === key)?.name ?? key;
    if (by === 'user') return users.data?.find((candidate) => candidate.id === key)?.username ?? key;
    return key || '—';
  };
  const data = rerate.data;
  const currency = data?.price.currency;
  const chargedCurrencies = [...new Set((data?.rows ?? []).map((row) => row.charged_currency).filter(Boolean))];
  const chargedCurrency = chargedCurrencies.length > 0 ? chargedCurrencies.join('+') : currency;

  return (
    <Card size="small" title={t('rerate.tableTitle', { alias, version })} data-testid="rerate">
      <Space wrap style={{ marginBottom: 12 }}>
        <RangeControls {...range.controls} />
        <Space size={4}>
          <Typography.Text type="secondary">{t('rerate.groupBy')}</Typography.Text>
          <Select<RerateBy>
            aria-label="rerate-by"
            value={by}
            style={{ width: 120 }}
            onChange={setBy}
            options={BY.map((option) => ({ value: option, label: t(`rerate.byOptions.${option}`) }))}
          />
        </Space>
        <Button
          icon={<ReloadOutlined />}
          onClick={() => {
            // A preset moves to "now" (a new query); a custom range asks again.
            if (range.preset) range.moveOn();
            else void rerate.refetch();
          }}
        >
          {t('common.refresh')}
        </Button>
        <Button
          icon={<DownloadOutlined />}
          loading={exporting}
          onClick={() => {
            setExporting(true);
            download(rerateCsvPath(params), `axongate-rerate-${alias}-v${version}-${dayjs().format('YYYYMMDD-HHmmss')}.csv`)
              .catch((error) => message.error(errorText(error)))
              .finally(() => setExporting(false));
          }}
        >
          {t('rerate.downloadCsv')}
        </Button>
      </Space>
      <ErrorAlert error={rerate.error} />
      {data && !rerate.error && (
        <Typography.Paragraph type="secondary" data-testid="rerate-price">
          {t('rerate.priceLine', {
            version: data.price.version,
            input: data.price.input_per_million,
            output: data.price.output_per_million,
            cacheRead: data.price.cache_read_per_million,
            cacheWrite: data.price.cache_write_per_million,
            currency: data.price.currency,
          })}
        </Typography.Paragraph>
      )}
      {!rerate.error && (
        <Table<RerateRow>
          rowKey="key"
          size="small"
          loading={rerate.isFetching}
          dataSource={data?.rows ?? []}
          pagination={false}
          scroll={{ x: 900 }}
          locale={{ emptyText: t('rerate.noRows') }}
          columns={[
            { title: t(`rerate.byOptions.${by}`), dataIndex: 'key', render: (key: string) => <span title={key}>{keyLabel(key)}</span> },
            { title: t('usage.requests'), dataIndex: 'requests', align: 'right', render: formatNumber },
            { title: t('usage.inputTokens'), dataIndex: 'input_tokens', align: 'right', render: formatNumber },
            { title: t('usage.outputTokens'), dataIndex: 'output_tokens', align: 'right', render: formatNumber },
            {
              title: t('rerate.charged'),
              dataIndex: 'charged',
              align: 'right',
              render: (charged: string, row) => formatMoney(charged, row.charged_currency || undefined),
            },
            {
              title: t('rerate.rerated'),
              dataIndex: 'rerated',
              align: 'right',
              render: (rerated: string) => formatMoney(rerated, currency),
            },
            {
              title: <span title={t('rerate.differenceHelp')}>{t('rerate.difference')}</span>,
              dataIndex: 'difference',
              align: 'right',
              render: (difference: string) => <Difference amount={difference} currency={currency} />,
            },
          ]}
          summary={() =>
            data && data.rows.length > 0 ? (
              <Table.Summary.Row data-testid="rerate-total">
                <Table.Summary.Cell index={0}>
                  <Typography.Text strong>{t('rerate.total')}</Typography.Text>
                </Table.Summary.Cell>
                <Table.Summary.Cell index={1} align="right">
                  {formatNumber(data.total.requests)}
                </Table.Summary.Cell>
                <Table.Summary.Cell index={2} />
                <Table.Summary.Cell index={3} />
                <Table.Summary.Cell index={4} align="right">
                  <span data-testid="rerate-total-charged">{formatMoney(data.total.charged, chargedCurrency)}</span>
                </Table.Summary.Cell>
                <Table.Summary.Cell index={5} align="right">
                  <span data-testid="rerate-total-rerated">{formatMoney(data.total.rerated, currency)}</span>
                </Table.Summary.Cell>
                <Table.Summary.Cell index={6} align="right">
                  <Difference amount={data.total.difference} currency={currency} testId="rerate-total-difference" />
                </Table.Summary.Cell>
              </Table.Summary.Row>
            ) : null
          }
        />
      )}
    </Card>
  );
}

/**
 * Every price version a model has had (`GET /models/{id}/prices`), newest first, each with
 * what re-rating the model's requests at it would give.
 */
export function PriceHistoryDrawer({ model, onClose }: { model: Model | null; onClose: () => void }) {
  const { t } = useTranslation();
  const [selected, setSelected] = useState<PriceVersion | null>(null);
  const history = useQuery({
    queryKey: ['/models', model?.id, 'prices'],
    queryFn: () => get<PriceHistory>(`/models/${encodeURIComponent(model!.id)}/prices`),
    enabled: model != null,
  });
  const versions = useMemo(() => [...(history.data?.versions ?? [])].reverse(), [history.data]);
  const current = model?.price?.version;
  const price = (amount: string, version: PriceVersion) => `${amount} ${version.currency}`;
  const close = () => {
    setSelected(null);
    onClose();
  };

  return (
    <Drawer
      open={model != null}
      onClose={close}
      width={1100}
      title={t('rerate.historyTitle', { alias: model?.alias ?? '' })}
      destroyOnHidden
    >
      <ErrorAlert error={history.error} />
      <div data-testid="price-history">
        <Table<PriceVersion>
          rowKey="version"
          size="small"
          loading={history.isLoading}
          dataSource={versions}
          pagination={false}
          scroll={{ x: 1000 }}
          locale={{ emptyText: t('rerate.noHistory') }}
          rowClassName={(version) => (version.version === selected?.version ? 'ant-table-row-selected' : '')}
          columns={[
            {
              title: t('rerate.version'),
              dataIndex: 'version',
              render: (number: number) => (
                <Space size={4}>
                  <Typography.Text strong>v{number}</Typography.Text>
                  {number === current && <Tag color="blue">{t('rerate.current')}</Tag>}
                </Space>
              ),
            },
            {
              title: t('rerate.input'),
              dataIndex: 'input_per_million',
              align: 'right',
              render: (amount: string, row) => price(amount, row),
            },
            {
              title: t('rerate.output'),
              dataIndex: 'output_per_million',
              align: 'right',
              render: (amount: string, row) => price(amount, row),
            },
            {
              title: t('rerate.cacheRead'),
              dataIndex: 'cache_read_per_million',
              align: 'right',
              render: (amount: string, row) => price(amount, row),
            },
            {
              title: t('rerate.cacheWrite'),
              dataIndex: 'cache_write_per_million',
              align: 'right',
              render: (amount: string, row) => price(amount, row),
            },
            { title: t('rerate.since'), dataIndex: 'since', render: formatTime },
            { title: t('rerate.by'), dataIndex: 'by', render: (by: string | null) => by ?? '—' },
            { title: t('rerate.configSeq'), dataIndex: 'since_seq', align: 'right' },
            {
              title: t('common.actions'),
              key: 'actions',
              render: (_: unknown, version) => (
                <Button
                  size="small"
                  type={version.version === selected?.version ? 'primary' : 'default'}
                  onClick={() => setSelected(version)}
                >
                  {t('rerate.rerateAt')}
                </Button>
              ),
            },
          ]}
        />
      </div>
      {model && selected && (
        <div style={{ marginTop: 16 }}>
          <RerateTable key={selected.version} alias={selected.alias || model.alias} version={selected.version} />
        </div>
      )}
    </Drawer>
  );
}
