// Running a mutating action from a button: busy while it runs, its error shown with the
// API's message, an optional confirmation on success.
import { useCallback, useState } from "react";
import { toastError, toastSuccess } from "../stores/toasts";

export function useAction<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
  messages: { what: string; success?: string | ((result: R) => string) },
) {
  const [busy, setBusy] = useState(false);
  const run = useCallback(
    async (...args: A): Promise<R | undefined> => {
      setBusy(true);
      try {
        const result = await action(...args);
        if (messages.success) toastSuccess(typeof messages.success === "function" ? messages.success(result) : messages.success);
        return result;
      } catch (error) {
        toastError(error, messages.what);
        return undefined;
      } finally {
        setBusy(false);
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [action],
  );
  return { run, busy };
}
