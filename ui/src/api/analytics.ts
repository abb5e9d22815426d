import { useQuery, keepPreviousData } from '@tanstack/react-query';
import { get, queryString } from './client';
import type { Breakdown, BreakdownBy, Bucket, DashboardCards, RequestLog, Rerate, RerateBy, Summary, Timeseries } from './types';

/** The filters every analytics endpoint takes. */
export interface AnalyticsFilters {
  from: string;
  to: string;
  model?: string;
  provider?: string;
  provider_key?: string;
  token?: string;
  user?: string;
  team?: string;
  outcome?: string;
  error_kind?: string;
  client_protocol?: string;
}

type Options = { refetchInterval?: number | false; enabled?: boolean };

export function useSummary(filters: AnalyticsFilters, options: Options = {}) {
  return useQuery({
    queryKey: ['analytics', 'summary', filters],
    queryFn: () => get<Summary>('/analytics/summary', { ...filters }),
    placeholderData: keepPreviousData,
    ...options,
  });
}

export function useTimeseries(filters: AnalyticsFilters, bucket: Bucket, options: Options = {}) {
  return useQuery({
    queryKey: ['analytics', 'timeseries', filters, bucket],
    queryFn: () => get<Timeseries>('/analytics/timeseries', { ...filters, bucket }),
    placeholderData: keepPreviousData,
    ...options,
  });
}

export function useBreakdown(filters: AnalyticsFilters, by: BreakdownBy, top = 10, options: Options = {}) {
  return useQuery({
    queryKey: ['analytics', 'breakdown', filters, by, top],
    queryFn: () => get<Breakdown>('/analytics/breakdown', { ...filters, by, top }),
    placeholderData: keepPreviousData,
    ...options,
  });
}

export function useRequestLog(filters: AnalyticsFilters, limit: number, offset: number, options: Options = {}) {
  return useQuery({
    queryKey: ['analytics', 'requests', filters, limit, offset],
    queryFn: () => get<RequestLog>('/analytics/requests', { ...filters, limit, offset }),
    placeholderData: keepPreviousData,
    ...options,
  });
}

export function useDashboard(options: Options = {}) {
  return useQuery({ queryKey: ['dashboard'], queryFn: () => get<DashboardCards>('/dashboard'), ...options });
}

export const csvPath = (filters: AnalyticsFilters) => `/analytics/requests.csv${queryString({ ...filters })}`;

/** What `/analytics/rerate` takes: the filters, the grouping, and a price version of `model` or explicit prices. */
export interface RerateParams extends AnalyticsFilters {
  by: RerateBy;
  version?: number;
  input_per_million?: string;
  output_per_million?: string;
  cache_read_per_million?: string;
  cache_write_per_million?: string;
  currency?: string;
}

export function useRerate(params: RerateParams, options: Options = {}) {
  return useQuery({
    queryKey: ['analytics', 'rerate', params],
    queryFn: () => get<Rerate>('/analytics/rerate', { ...params }),
    placeholderData: keepPreviousData,
    ...options,
  });
}

export const rerateCsvPath = (params: RerateParams) => `/analytics/rerate.csv${queryString({ ...params })}`;
