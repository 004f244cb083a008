// What a promise rejects with, as text. `expect(p).rejects.toThrow(...)` checks that the rejection is an Error of
// the test file's realm; better-sqlite3's native addon keeps the error class of the first test file that loaded it
// in a jest worker, so a SQLite error (a trigger's RAISE) raised in a later file is an Error of another realm, and
// `rejects.toThrow` reports "did not throw" for it, depending on the order files ran in.
export async function rejectionOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    const message = (err as { message?: unknown } | null)?.message;
    return typeof message === 'string' ? message : String(err);
  }
  throw new Error('expected the promise to reject, and it resolved');
}
