// The open alarms (raised, not cleared) of the runs the signed-in user may see: one count for the whole page, shown
// beside the navigation's runs entry and in the tab's title. Read when the user signs in and again whenever the
// server announces a change to alarms (socket.io `changed`), never by polling.
import { ref } from 'vue';
import { api, call } from '../api/client';
import { onListChanged } from '../live';

const open = ref(0);
let unsubscribe: (() => void) | undefined;
let generation = 0;

async function read(): Promise<void> {
  const mine = ++generation;
  try {
    const answer = await call(api.openAlarmCount);
    if (mine === generation) open.value = answer.open;
  } catch {
    // the count is a hint beside the navigation: the last one stays until the next change
  }
}

/** Starts (or with false stops) following the count: App.vue calls it as the user signs in and out. */
export function followOpenAlarms(signedIn: boolean): void {
  unsubscribe?.();
  unsubscribe = undefined;
  generation++;
  open.value = 0;
  if (!signedIn) return;
  unsubscribe = onListChanged(['alarms', 'runs'], () => void read());
  void read();
}

export function useOpenAlarms(): { open: typeof open } {
  return { open };
}
