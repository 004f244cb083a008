// A refusal in the user's language: the server's stable reason or code with its parameters, and for bad input
// one line per field naming it. The server's English stays for logs; it is shown only when no key exists.
import { useI18n } from 'vue-i18n';
import { ApiError } from '../api/client';

export function useErrorText() {
  const { t, te } = useI18n();
  /** the label of a field (`fields.<path without indexes>`), else the path itself */
  const field = (path: string): string => {
    const key = `fields.${path.replace(/\[\d+\]/g, '')}`;
    return te(key) ? t(key) : path;
  };
  const issueText = (issue: ApiError['issues'][number]): string => {
    const key = `errors.issue.${issue.code ?? ''}`;
    const what = issue.code !== undefined && te(key) ? t(key, issue.params ?? {}) : issue.message;
    return t('errors.field', { field: field(issue.path), problem: what });
  };
  /** the whole refusal as one text */
  const errorText = (err: unknown): string => {
    if (!(err instanceof ApiError)) return t('errors.unexpected');
    if (err.issues.length > 0) return err.issues.map(issueText).join('\n');
    if (err.reason !== undefined && te(`errors.reason.${err.reason}`)) return t(`errors.reason.${err.reason}`, err.params);
    if (te(`errors.code.${err.code}`)) return t(`errors.code.${err.code}`, err.params);
    return t('errors.unexpected');
  };
  /** the problems of one field (a form shows them beside it) */
  const fieldErrors = (err: unknown, path: string): string[] =>
    err instanceof ApiError
      ? err.issues.filter((i) => i.path === path || i.path.startsWith(`${path}.`) || i.path.startsWith(`${path}[`)).map(issueText)
      : [];
  return { errorText, fieldErrors, field };
}
