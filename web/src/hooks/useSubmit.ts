// A submit (a dialog's, a button's) with its busy state, keeping its error for
// `ErrorBanner` and `fieldError` until the next run.
import { useCallback, useState } from "react";

/** Runs a submit; keeps its error (for `ErrorBanner` and `fieldError`) until the next run. */
export function useSubmit<A extends unknown[], R>(action: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(
    async (...args: A): Promise<{ ok: true; value: R } | { ok: false }> => {
      setBusy(true);
      setError(null);
      try {
        const value = await action(...args);
        return { ok: true, value };
      } catch (err) {
        setError(err);
        return { ok: false };
      } finally {
        setBusy(false);
      }
    },
    [action],
  );
  return { run, busy, error };
}
