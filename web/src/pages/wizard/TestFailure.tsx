// A failed step test: the error as the server gave it, and what its kind means.
import { explainErrorKind, text } from "./wizardData";
import "./wizard.css";

export function TestFailure({ details, what }: { details: Record<string, unknown>; what: string }) {
  const error = text(details.error) ?? "The test failed.";
  const kind = text(details.error_kind);
  const explanation = explainErrorKind(kind);
  return (
    <div className="error-banner wizard-failure" role="alert" data-testid="test-failure">
      <div>
        <strong>{what} failed</strong>
        {kind && <span className="badge badge-bad wizard-kind">{kind.replace(/_/g, " ")}</span>}
        <div className="mono wizard-error-text">{error}</div>
        {explanation && <p className="wizard-explanation">{explanation}</p>}
      </div>
    </div>
  );
}
