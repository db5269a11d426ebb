// What a host's test found: the engine's figures, or why it could not be reached.
import { TestFailure } from "../wizard/TestFailure";
import type { CheckResult } from "../wizard/wizardData";

export function CheckDetails({ result, name }: { result: CheckResult; name: string }) {
  if (!result.reachable) {
    return <TestFailure details={{ error: result.error, error_kind: result.error_kind }} what={`The test of ${name}`} />;
  }
  return (
    <dl className="kv">
      <dt>Engine version</dt>
      <dd>{result.engine_version ?? "—"}</dd>
      <dt>API version</dt>
      <dd>{result.api_version ?? "—"}</dd>
      {result.os && (
        <>
          <dt>Operating system</dt>
          <dd>{result.os}</dd>
        </>
      )}
      <dt>Containers</dt>
      <dd>{result.containers ?? "—"}</dd>
      <dt>Images</dt>
      <dd>{result.images ?? "—"}</dd>
      <dt>Latency</dt>
      <dd>{Math.round(result.latency_ms)} ms</dd>
      <dt>SSH handshakes</dt>
      <dd>{result.ssh_handshakes}</dd>
    </dl>
  );
}
