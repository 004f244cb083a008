// An action a user starts (start a run, issue a report): busy while it runs (its button disabled, aria-busy),
// its refusal kept for the view to translate, and an optional confirmation asked first.
import { ref, shallowRef } from 'vue';
import { ApiError } from '../api/client';

export interface Action<A extends unknown[], T> {
  /** runs the action; resolves to its answer, or undefined when refused, cancelled or already running */
  run: (...args: A) => Promise<T | undefined>;
  busy: ReturnType<typeof ref<boolean>>;
  error: ReturnType<typeof shallowRef<ApiError | undefined>>;
  /** true after the last run succeeded (a "saved" notice) */
  done: ReturnType<typeof ref<boolean>>;
}

export function useAction<A extends unknown[], T>(
  act: (...args: A) => Promise<T>,
  options: { confirm?: (...args: A) => string | undefined; onDone?: (answer: T) => void | Promise<void> } = {},
): Action<A, T> {
  const busy = ref(false);
  const done = ref(false);
  const error = shallowRef<ApiError>();
  async function run(...args: A): Promise<T | undefined> {
    if (busy.value) return undefined;
    const question = options.confirm?.(...args);
    if (question !== undefined && !window.confirm(question)) return undefined;
    busy.value = true;
    done.value = false;
    error.value = undefined;
    try {
      const answer = await act(...args);
      done.value = true;
      await options.onDone?.(answer);
      return answer;
    } catch (err) {
      error.value = err instanceof ApiError ? err : new ApiError(0, { error: err instanceof Error ? err.message : String(err), code: 'E_CLIENT' });
      return undefined;
    } finally {
      busy.value = false;
    }
  }
  return { run, busy, error, done };
}
