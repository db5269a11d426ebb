// The audit log's chain check: intact, or the first entry that does not match.
import type { components } from "../../api/schema";
import "./resources.css";

export type ChainReport = components["schemas"]["ChainReportView"];

export function ChainResult({ report, onClose }: { report: ChainReport; onClose: () => void }) {
  return (
    <div className={`panel ${report.valid ? "res-verify-ok" : "res-verify-bad"}`} role="status" data-testid="chain-result" data-valid={String(report.valid)}>
      <div className="res-pull-head">
        <strong>{report.valid ? "The audit chain is intact" : "The audit chain is broken"}</strong>
        <button type="button" className="icon" aria-label="Close the chain result" onClick={onClose}>
          ×
        </button>
      </div>
      <div>
        {report.checked} entr{report.checked === 1 ? "y" : "ies"} checked.
        {report.last_hash && (
          <>
            {" "}
            Last hash <span className="mono small">{report.last_hash}</span>
          </>
        )}
      </div>
      {report.first_invalid != null && (
        <>
          <div style={{ marginTop: 8 }}>First entry that does not match:</div>
          <pre className="res-json">{JSON.stringify(report.first_invalid, null, 2)}</pre>
        </>
      )}
    </div>
  );
}
