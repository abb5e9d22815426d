import { useCallback, useMemo, useState } from 'react';
import { DatePicker, Segmented } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useTranslation } from 'react-i18next';
import { RANGE_KEYS, rangeFor, type RangeKey } from './range';

interface RangeControlsProps {
  preset: RangeKey | null;
  custom: [Dayjs, Dayjs] | null;
  onPreset: (key: RangeKey) => void;
  onCustom: (range: [Dayjs, Dayjs]) => void;
}

/**
 * The state behind `RangeControls`: a preset (which ends "now") or a custom range. "Now" is the
 * instant the preset was chosen or last moved on (`moveOn`), not each render, so `from` and `to`
 * stay the same objects between renders and queries keyed on them do not repeat.
 */
export function useRange(initial: RangeKey) {
  const [preset, setPreset] = useState<RangeKey | null>(initial);
  const [custom, setCustom] = useState<[Dayjs, Dayjs] | null>(null);
  const [now, setNow] = useState(() => dayjs());
  const moveOn = useCallback(() => setNow(dayjs()), []);
  const [from, to] = useMemo(() => (preset ? rangeFor(preset, now) : (custom ?? rangeFor(initial, now))), [preset, custom, now, initial]);
  const controls: RangeControlsProps = {
    preset,
    custom,
    onPreset: (key) => {
      setPreset(key);
      setCustom(null);
      setNow(dayjs());
    },
    onCustom: (range) => {
      setCustom(range);
      setPreset(null);
    },
  };
  return { preset, from, to, controls, moveOn };
}

/** Preset ranges plus a custom range picker. */
export function RangeControls({ preset, custom, onPreset, onCustom }: RangeControlsProps) {
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
