// Secrets the server takes from its environment: a value, or a file that holds it (a Docker secret). Never logged.
import { readFileSync } from 'node:fs';
import { LabtraceError } from '@labtrace/protocols';

/**
 * The first admin's password: LABTRACE_ADMIN_PASSWORD, or the content of the file LABTRACE_ADMIN_PASSWORD_FILE names
 * (one trailing newline dropped). Both at once is a mistake, an unreadable or empty file too. Never logged.
 */
export function adminPasswordFrom(env: NodeJS.ProcessEnv): string | undefined {
  const value = env['LABTRACE_ADMIN_PASSWORD'];
  const file = env['LABTRACE_ADMIN_PASSWORD_FILE'];
  if (file === undefined || file === '') return value === '' ? undefined : value;
  if (value !== undefined && value !== '')
    throw new LabtraceError('E_CONFIG', 'LABTRACE_ADMIN_PASSWORD and LABTRACE_ADMIN_PASSWORD_FILE are both set; set one of them');
  const password = readSecretFile(file, 'LABTRACE_ADMIN_PASSWORD_FILE');
  return password;
}

/** A secret's file: its content without the one trailing newline; an unreadable or empty file is a configuration error. */
export function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new LabtraceError('E_CONFIG_READ', `${what}: ${file}: ${reason}`, { cause: err });
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new LabtraceError('E_CONFIG', `${what}: ${file} is empty`);
  return secret;
}
