import { DatePicker, Segmented } from 'antd';
import type { Dayjs } from 'dayjs';
import { useTranslation } from 'react-i18next';
import { RANGE_KEYS, type RangeKey } from './range';

/** Preset ranges plus a custom range picker. */
export function RangeControls({
  preset,
  custom,
  onPreset,
  onCustom,
}: {
  preset: RangeKey | null;
  custom: [Dayjs, Dayjs] | null;
  onPreset: (key: RangeKey) => void;
  onCustom: (range: [Dayjs, Dayjs]) => void;
}) {
  const { t } = useTranslation();
  return (
    <>
      <Segmented<string>
        value={preset ?? 'custom'}
        options={RANGE_KEYS.map((key) => ({ value: key, label: t(`range.${key}`) }))}
        onChange={(value) => onPreset(value as RangeKey)}
      />
      <DatePicker.RangePicker
        showTime
        value={custom}
        onChange={(value) => {
          if (value?.[0] && value[1]) onCustom([value[0], value[1]]);
        }}
      />
    </>
  );
}
