// An error as the API described it: its code, message and request id, with an optional
// "Retry".
import { ApiError, errorMessage } from "../api/client";

/** An error with the API's code and message (and request id, for support). */
export function ErrorBanner({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  return (
    <div className="error-banner" role="alert">
      <strong>{api ? api.code : "Error"}</strong> {errorMessage(error)}
      {api?.requestId && <span className="muted"> (request {api.requestId})</span>}
      {onRetry && (
        <button type="button" className="link" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}
