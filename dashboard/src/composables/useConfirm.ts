// Asking before a destructive or signing action (issue, revoke, stop, abort, disable, revoke a key): one dialog for
// the whole dashboard (ConfirmDialog.vue in App.vue), opened with `await confirmAction({...})`. It answers the reason
// typed (an empty string when none was asked) or undefined when the user cancelled. The server stays the authority:
// it refuses a missing reason where it requires one, whatever the dialog asked.
import { shallowRef } from 'vue';

export interface ConfirmRequest {
  /** the dialog's heading (translated): "Revoke report R-2026-0012?" */
  title: string;
  /** what will happen (translated), e.g. that it cannot be undone */
  message?: string;
  /** the confirming button's text (translated): "Revoke" */
  confirmLabel: string;
  /** ask for a reason: 'required' (the server requires one), 'optional', or leave out for none */
  reason?: 'required' | 'optional';
  /** the reason field's label (translated), "Reason" when left out */
  reasonLabel?: string;
  /** a red confirming button (destructive actions) */
  danger?: boolean;
}

interface Pending extends ConfirmRequest {
  resolve: (reason: string | undefined) => void;
}

/** the open request (ConfirmDialog shows it), undefined when none */
export const pendingConfirm = shallowRef<Pending>();

/** Opens the dialog; resolves to the reason given ('' when none was asked) or undefined when cancelled. */
export function confirmAction(request: ConfirmRequest): Promise<string | undefined> {
  // a second request while one is open cancels the first
  pendingConfirm.value?.resolve(undefined);
  return new Promise((resolve) => {
    pendingConfirm.value = {
      ...request,
      resolve: (reason) => {
        pendingConfirm.value = undefined;
        resolve(reason);
      },
    };
  });
}
