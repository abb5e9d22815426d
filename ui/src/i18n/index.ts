// English and Simplified Chinese. The browser language decides by default; a choice made in
// the UI is kept in localStorage and wins.
import i18n from 'i18next';
import { initReactI18next } from 'react-i18next';
import dayjs from 'dayjs';
import 'dayjs/locale/zh-cn';
import en from './en';
import zh from './zh';

export type Language = 'en' | 'zh';
const STORAGE_KEY = 'axongate.language';

export function detectLanguage(): Language {
  const stored = typeof localStorage !== 'undefined' ? localStorage.getItem(STORAGE_KEY) : null;
  if (stored === 'en' || stored === 'zh') return stored;
  const browser = typeof navigator !== 'undefined' ? (navigator.languages?.[0] ?? navigator.language ?? 'en') : 'en';
  return browser.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export function setLanguage(language: Language): void {
  localStorage.setItem(STORAGE_KEY, language);
  dayjs.locale(language === 'zh' ? 'zh-cn' : 'en');
  void i18n.changeLanguage(language);
}

const initial = detectLanguage();
dayjs.locale(initial === 'zh' ? 'zh-cn' : 'en');
void i18n.use(initReactI18next).init({
  resources: { en: { translation: en }, zh: { translation: zh } },
  lng: initial,
  fallbackLng: 'en',
  interpolation: { escapeValue: false },
});

export default i18n;
