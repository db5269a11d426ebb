// Step 4: reach the Docker engine through the SSH connection and show what it reports.
import { TestRunBar } from "../../components/TestRunBar";
import { TestFailure } from "./TestFailure";
import type { StepTestView } from "./wizardData";

function shown(value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  return String(value);
}

export function DockerTestStep({
  test,
  busy,
  running = false,
  onRun,
}: {
  test: StepTestView | null;
  busy: boolean;
  running?: boolean;
  onRun: () => void;
}) {
  const details = test?.details ?? {};
  return (
    <div className="wizard-step" data-testid="step-docker-test">
      <p className="muted">dcp opens the host's Docker socket through SSH and asks the engine for its version and state.</p>
      <TestRunBar busy={busy} running={running} testedAt={test?.tested_at} onRun={onRun} />
      {test && !test.passed && <TestFailure details={details} what="The Docker test" />}
      {test?.passed && (
        <div className="panel wizard-result" data-testid="docker-test-result">
          <p className="wizard-ok">Docker test passed: the engine answered through SSH.</p>
          <dl className="kv">
            <dt>Engine version</dt>
            <dd data-testid="engine-version">{shown(details.version)}</dd>
            <dt>API version</dt>
            <dd>{shown(details.api_version)}</dd>
            <dt>Operating system</dt>
            <dd>{shown(details.os)}</dd>
            {details.kernel !== undefined && (
              <>
                <dt>Kernel</dt>
                <dd>
                  {shown(details.kernel)}
                  {details.architecture ? ` (${shown(details.architecture)})` : ""}
                </dd>
              </>
            )}
            {details.name !== undefined && (
              <>
                <dt>Engine host name</dt>
                <dd>{shown(details.name)}</dd>
              </>
            )}
            <dt>Containers</dt>
            <dd>
              {shown(details.containers)}
              {details.containers_running !== undefined && details.containers_running !== null ? ` (${shown(details.containers_running)} running)` : ""}
            </dd>
            <dt>Images</dt>
            <dd>{shown(details.images)}</dd>
          </dl>
        </div>
      )}
    </div>
  );
}
