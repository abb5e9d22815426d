import { Alert, App, type FormInstance } from 'antd';
import { useTranslation } from 'react-i18next';
import { ApiError } from '../api/client';

/** The message to show for any error: the API's own words, with its code. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.code && !error.code.startsWith('http_') ? `${error.message} (${error.code})` : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorAlert({ error }: { error: unknown }) {
  const { t } = useTranslation();
  if (!error) return null;
  return (
    <Alert type="error" showIcon message={t('common.error')} description={errorText(error)} style={{ marginBottom: 16 }} role="alert" />
  );
}

/**
 * Shows an API error on the form field it names (`price.input_per_million` → ['price',
 * 'input_per_million']) when the form has that field, and as a message otherwise.
 */
export function useErrorReporter() {
  const { message } = App.useApp();
  return (error: unknown, form?: FormInstance) => {
    if (form && error instanceof ApiError && error.field) {
      const path = error.field.split('.').flatMap((part) => {
        const match = /^(\w+)\[(\d+)\]$/.exec(part);
        return match ? [match[1], Number(match[2])] : [part];
      });
      if (form.getFieldInstance(path) !== undefined || form.getFieldValue(path) !== undefined) {
        form.setFields([{ name: path, errors: [error.message] }]);
        return;
      }
    }
    void message.error(errorText(error));
  };
}
