import { Tag, Tooltip } from 'antd';
import { useTranslation } from 'react-i18next';
import type { ProviderKey } from '../api/types';
import { formatTime } from '../format';

export type HealthState = 'healthy' | 'failing' | 'untested';

/** A key is failing when its latest recorded result (test or traffic) was an error. */
export function healthOf(key: ProviderKey): HealthState {
  const health = key.health;
  if (!health || (!health.last_success_at && !health.last_error_at)) return 'untested';
  if (!health.last_error_at) return 'healthy';
  if (!health.last_success_at) return 'failing';
  return new Date(health.last_success_at) >= new Date(health.last_error_at) ? 'healthy' : 'failing';
}

export function HealthTag({ keyItem }: { keyItem: ProviderKey }) {
  const { t } = useTranslation();
  const state = healthOf(keyItem);
  const color = state === 'healthy' ? 'green' : state === 'failing' ? 'red' : 'default';
  const health = keyItem.health;
  const detail = health
    ? `${t('keys.lastSuccess')}: ${formatTime(health.last_success_at)} · ${t('keys.lastError')}: ${formatTime(health.last_error_at)}${health.last_error ? ` (${health.last_error})` : ''}`
    : t('keys.untested');
  return (
    <Tooltip title={detail}>
      <Tag color={color}>{t(`keys.${state}`)}</Tag>
    </Tooltip>
  );
}
