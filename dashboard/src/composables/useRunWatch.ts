// Watching a run live from a view: joins the run's socket.io room (live.ts's watchRun) for as long as the view is
// mounted, leaves it when the view goes, and keeps what the view shows about it reactive: whether it is in the
// room (joined again after each reconnection), why not, and how many live samples came in.
import { onUnmounted, ref } from 'vue';
import { watchRun, type RunWatcher } from '../live';

export type WatchState = 'joining' | 'watching' | 'refused';

export interface RunWatchHandlers {
  samples: RunWatcher['samples'];
  state: RunWatcher['state'];
  alarm: RunWatcher['alarm'];
  /** joined the room again after a reconnection: the view fills in from the stored records what it missed */
  rejoined?: () => void;
}

export function useRunWatch(run: string, handlers: RunWatchHandlers) {
  const watching = ref<WatchState>('joining');
  /** the server's refusal (its code, e.g. E_NOT_FOUND), when the room was refused */
  const refusal = ref<string>();
  /** live samples received since the view opened */
  const live = ref(0);
  /** how often the room was joined (more than once: reconnected) */
  let joins = 0;
  const stop = watchRun(run, {
    samples: (samples) => {
      live.value += samples.length;
      handlers.samples(samples);
    },
    state: handlers.state,
    alarm: handlers.alarm,
    joined: (answer) => {
      if (answer.ok) {
        if (joins > 0) handlers.rejoined?.();
        joins++;
        watching.value = 'watching';
        refusal.value = undefined;
      } else {
        watching.value = 'refused';
        refusal.value = answer.error;
      }
    },
  });
  onUnmounted(stop);
  return { watching, refusal, live, stop };
}
