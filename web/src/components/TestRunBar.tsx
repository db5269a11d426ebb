// The "Run test" bar of a wizard's test steps: the button, the run in progress, and when
// the last one ran.
import { formatTime } from "../format";
import "./wizard.css";

/** The "Run test" button of the test steps, with the run in progress and the last one. */
export function TestRunBar({
  busy,
  running,
  testedAt,
  onRun,
}: {
  busy: boolean;
  running: boolean;
  testedAt: string | null | undefined;
  onRun: () => void;
}) {
  return (
    <div className="wizard-test-bar">
      <button type="button" className="primary" onClick={onRun} disabled={busy}>
        Run test
      </button>
      {running && (
        <span className="small muted" role="status">
          Testing…
        </span>
      )}
      {testedAt && <span className="small muted">Last run {formatTime(testedAt)}</span>}
    </div>
  );
}
