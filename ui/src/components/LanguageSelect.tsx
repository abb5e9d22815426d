import { Select } from 'antd';
import { GlobalOutlined } from '@ant-design/icons';
import { useTranslation } from 'react-i18next';
import { setLanguage, type Language } from '../i18n';

export function LanguageSelect({ style }: { style?: React.CSSProperties }) {
  const { i18n, t } = useTranslation();
  return (
    <Select<Language>
      aria-label={t('app.language')}
      data-testid="language-select"
      value={i18n.language as Language}
      onChange={setLanguage}
      suffixIcon={<GlobalOutlined />}
      style={{ width: 120, ...style }}
      options={[
        { value: 'en', label: 'English' },
        { value: 'zh', label: '简体中文' },
      ]}
    />
  );
}
