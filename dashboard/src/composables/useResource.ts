// A resource a view shows: loaded on mount (and again when its sources change), with loading and error states
// so that no view is ever blank while it waits. `data` keeps the last good answer while a reload runs.
import { onMounted, ref, shallowRef, watch, type Ref, type ShallowRef, type WatchSource } from 'vue';
import { ApiError } from '../api/client';

export interface Resource<T> {
  data: ShallowRef<T | undefined>;
  /** true until the first answer, and during every reload */
  loading: Ref<boolean>;
  error: ShallowRef<ApiError | undefined>;
  reload: () => Promise<void>;
}

export function useResource<T>(load: () => Promise<T>, options: { watch?: WatchSource[]; immediate?: boolean } = {}): Resource<T> {
  const data = shallowRef<T>();
  const loading = ref(true);
  const error = shallowRef<ApiError>();
  let generation = 0;
  async function reload(): Promise<void> {
    const mine = ++generation;
    loading.value = true;
    try {
      const answer = await load();
      if (mine !== generation) return; // a newer load started: its answer wins
      data.value = answer;
      error.value = undefined;
    } catch (err) {
      if (mine !== generation) return;
      error.value = err instanceof ApiError ? err : new ApiError(0, { error: err instanceof Error ? err.message : String(err), code: 'E_CLIENT' });
    } finally {
      if (mine === generation) loading.value = false;
    }
  }
  if (options.immediate !== false) onMounted(() => void reload());
  if (options.watch && options.watch.length > 0) watch(options.watch, () => void reload());
  return { data, loading, error, reload };
}
