// A list view whose filters live in its address (list-query.ts): the filters read from the route's query, the
// address following the filters the user sets (replaced, not pushed: "back" leaves the list), and a fresh list
// (`generation`, the list's key) when the address changes from outside (back, forward, a link), not when it
// follows the list.
import { ref, watch, type Ref } from 'vue';
import { useRoute, useRouter, type LocationQuery } from 'vue-router';
import { queryOf, sameQuery } from '../list-query';

export function useQueryFilters<F extends object>(
  routeName: string,
  filtersOf: (query: LocationQuery) => F,
): { initial: Ref<F>; generation: Ref<number>; follow: (filters: F) => void } {
  const route = useRoute();
  const router = useRouter();
  const initial = ref(filtersOf(route.query)) as Ref<F>;
  const generation = ref(0);
  let written: Record<string, string> | undefined;

  function follow(filters: F): void {
    if (sameQuery(route.query, filters)) return;
    written = queryOf(filters);
    void router.replace({ query: written });
  }
  watch(
    () => route.query,
    (query) => {
      if (route.name !== routeName) return;
      if (written !== undefined && sameQuery(query, written)) return;
      initial.value = filtersOf(query);
      generation.value++;
    },
  );
  return { initial, generation, follow };
}
