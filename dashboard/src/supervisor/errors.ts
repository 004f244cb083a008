// A refusal of the API in the user's language: the common codes worded, anything else with the server's message.
import { useI18n } from 'vue-i18n';
import { SupervisorError } from './api';

export function useErrorText() {
  const { t } = useI18n();
  const errorText = (err: unknown): string => {
    if (!(err instanceof SupervisorError)) return t('errors.unexpected', { message: String((err as Error)?.message ?? err) });
    if (err.status === 401) return t('signIn.refused');
    if (err.status === 0) return t('errors.unreachable', { message: err.message });
    if (err.code === 'E_NOT_FOUND') return t('errors.notFound', { message: err.message });
    return t('errors.refused', { message: err.message });
  };
  return { errorText };
}
