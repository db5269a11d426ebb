// Small shared pieces: page header, error banner, status badge, modal, spinner, empty state.
import { useEffect, useRef, type ReactNode } from "react";
import { ApiError, errorMessage } from "../api/client";

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="page-header">
      <h1>{title}</h1>
      <div className="page-actions">{children}</div>
    </div>
  );
}

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

const STATE_CLASS: Record<string, string> = {
  running: "ok",
  active: "ok",
  ok: "ok",
  succeeded: "ok",
  healthy: "ok",
  paused: "warn",
  restarting: "warn",
  created: "info",
  pending: "info",
  setup_pending: "info",
  in_progress: "info",
  exited: "off",
  disabled: "off",
  cancelled: "off",
  completed: "ok",
  dead: "bad",
  failed: "bad",
  unreachable: "bad",
  removing: "warn",
};

export function StatusBadge({ status }: { status: string | null | undefined }) {
  const value = status ?? "unknown";
  return <span className={`badge badge-${STATE_CLASS[value] ?? "info"}`}>{value.replace(/_/g, " ")}</span>;
}

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="spinner" role="status">
      {label}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** A dialog over the page; Escape or the close button calls `onClose`. */
export function Modal({
  title,
  onClose,
  children,
  footer,
  wide,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const closeRef = useRef(onClose);
  useEffect(() => {
    closeRef.current = onClose;
  });
  // Focus moves into the dialog once, when it opens (not on every re-render), stays in it
  // while Tab cycles, and goes back to what had it when the dialog closes.
  useEffect(() => {
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const focusable = () =>
      Array.from(ref.current?.querySelectorAll<HTMLElement>("input, select, textarea, button, a[href]") ?? []).filter((el) => !el.hasAttribute("disabled"));
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") closeRef.current();
      if (event.key !== "Tab") return;
      const items = focusable();
      const first = items[0];
      const last = items[items.length - 1];
      if (!first || !last) return;
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    const fields = focusable();
    (fields.find((el) => !el.classList.contains("icon")) ?? fields[0])?.focus();
    return () => {
      window.removeEventListener("keydown", onKey);
      opener?.focus();
    };
  }, []);
  return (
    <div className="modal-backdrop" onMouseDown={(event) => event.target === event.currentTarget && onClose()}>
      <div className={`modal${wide ? " modal-wide" : ""}`} role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <div className="modal-header">
          <h2>{title}</h2>
          <button type="button" className="icon" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </div>
        <div className="modal-body">{children}</div>
        {footer && <div className="modal-footer">{footer}</div>}
      </div>
    </div>
  );
}

/** A labelled form field with the API's message for it, when the last error named it. */
export function Field({
  label,
  error,
  hint,
  children,
}: {
  label: string;
  error?: string | null;
  hint?: ReactNode;
  children: ReactNode;
}) {
  // The hint and message stay outside the <label>, so the control's name is the label alone.
  return (
    <div className={`field${error ? " field-error" : ""}`}>
      <label className="field">
        <span className="field-label">{label}</span>
        {children}
      </label>
      {hint && <span className="field-hint">{hint}</span>}
      {error && <span className="field-message">{error}</span>}
    </div>
  );
}

/** The message for `field` when `error` is an API error about it. */
export function fieldError(error: unknown, field: string): string | null {
  return error instanceof ApiError && error.field !== null && (error.field === field || error.field.startsWith(`${field}.`) || error.field.startsWith(`${field}[`))
    ? error.message
    : null;
}
