// The audit trail's live announcement: after an entry is appended, dashboards showing the trail read their page
// again (`changed` for the list 'audit'). Only the lab room hears it (the trail's entries may be any organization's;
// a viewer limited to some organizations reads its page again on its own schedule). A burst of entries (a batch
// import, a login storm) is announced at most once per interval: the first at once, the rest together at its end.
import type { AuditTrail } from './audit-trail.js';

export interface AuditAnnouncer {
  stop(): void;
}

export function announceAuditChanges(trail: AuditTrail, changed: (change: { list: 'audit'; id: string }) => void, intervalMs = 250): AuditAnnouncer {
  let timer: NodeJS.Timeout | undefined;
  let pending: string | undefined;
  const flush = (): void => {
    timer = undefined;
    if (pending === undefined) return;
    const id = pending;
    pending = undefined;
    changed({ list: 'audit', id });
    timer = setTimeout(flush, intervalMs);
    timer.unref();
  };
  const off = trail.onAppend((entry) => {
    pending = String(entry.id);
    if (timer === undefined) flush();
  });
  return {
    stop() {
      off();
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
