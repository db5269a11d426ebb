// The container's key facts from its inspect document, and the document itself.
import type { ReactNode } from "react";
import type { ContainerDetail } from "../../api/types";
import { StatusBadge } from "../../components/StatusBadge";
import { formatAgo, formatBytes, formatTime, shortId } from "../../format";
import { containerCommand, containerState, portList, restartPolicy, type InspectDocument } from "./inspect";
import { LazyDetails } from "./LazyDetails";
import "./container.css";

/** Docker's "never" (`0001-01-01T00:00:00Z`) is no time at all. */
function dockerTime(value: string | undefined): string | null {
  return value && !value.startsWith("0001-") ? value : null;
}

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

function List({ items, empty = "none" }: { items: ReactNode[]; empty?: string }) {
  if (items.length === 0) return <span className="muted">{empty}</span>;
  return (
    <ul className="cd-list">
      {items.map((item, i) => (
        <li key={i}>{item}</li>
      ))}
    </ul>
  );
}

export function Overview({ detail }: { detail: ContainerDetail }) {
  const inspect = detail.inspect as unknown as InspectDocument;
  const state = inspect.State ?? {};
  const config = inspect.Config ?? {};
  const started = dockerTime(state.StartedAt);
  const finished = dockerTime(state.FinishedAt);
  const env = config.Env ?? [];
  const labels = Object.entries(config.Labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const networks = Object.entries(inspect.NetworkSettings?.Networks ?? {});
  const mounts = inspect.Mounts ?? [];
  const platform = detail.platform;

  return (
    <div className="cd-overview">
      <section className="panel">
        <h2>Container</h2>
        <dl className="kv" data-testid="container-facts">
          <Row label="ID">
            <code>{detail.id}</code>
          </Row>
          <Row label="Name">{detail.name}</Row>
          <Row label="Image">
            {config.Image ?? "—"} <span className="muted mono">{shortId(inspect.Image)}</span>
          </Row>
          <Row label="Command">
            <code>{containerCommand(inspect)}</code>
          </Row>
          <Row label="Created">
            {formatTime(inspect.Created)} <span className="muted">({formatAgo(inspect.Created)})</span>
          </Row>
          <Row label="State">
            <StatusBadge status={containerState(inspect)} />
            {state.Health?.Status && (
              <>
                {" "}
                <StatusBadge status={state.Health.Status} />
              </>
            )}
            {state.Running && started && <span className="muted"> since {formatTime(started)}</span>}
            {!state.Running && finished && (
              <span className="muted">
                {" "}
                exited {formatTime(finished)} with code {state.ExitCode ?? "?"}
              </span>
            )}
            {state.OOMKilled && <span className="badge badge-bad cd-gap">OOM killed</span>}
            {state.Error && <div className="cd-error-text">{state.Error}</div>}
          </Row>
          {state.Running && state.Pid ? <Row label="PID">{state.Pid}</Row> : null}
          <Row label="Restart policy">
            {restartPolicy(inspect)}
            {inspect.RestartCount ? <span className="muted"> (restarted {inspect.RestartCount}×)</span> : null}
          </Row>
          {inspect.HostConfig?.Memory ? <Row label="Memory limit">{formatBytes(inspect.HostConfig.Memory)}</Row> : null}
          {inspect.HostConfig?.NanoCpus ? <Row label="CPU limit">{inspect.HostConfig.NanoCpus / 1e9} CPUs</Row> : null}
          {config.WorkingDir ? <Row label="Working dir">{config.WorkingDir}</Row> : null}
          {config.User ? <Row label="User">{config.User}</Row> : null}
          {inspect.HostConfig?.Privileged && (
            <Row label="Privileged">
              <span className="badge badge-warn">privileged</span>
            </Row>
          )}
          <Row label="Host">{detail.host}</Row>
        </dl>
      </section>

      <section className="panel">
        <h2>Ports</h2>
        <List items={portList(inspect).map((port) => <code>{port}</code>)} empty="No ports" />
      </section>

      <section className="panel">
        <h2>Mounts</h2>
        <List
          empty="No mounts"
          items={mounts.map((mount) => (
            <span>
              <span className="badge badge-info">{mount.Type ?? "mount"}</span>{" "}
              <code>{mount.Type === "volume" && mount.Name ? mount.Name : (mount.Source ?? "")}</code> →{" "}
              <code>{mount.Destination}</code> <span className="muted">{mount.RW === false ? "read-only" : "read-write"}</span>
            </span>
          ))}
        />
      </section>

      <section className="panel">
        <h2>Networks</h2>
        <List
          empty={inspect.HostConfig?.NetworkMode ? `Network mode ${inspect.HostConfig.NetworkMode}` : "No networks"}
          items={networks.map(([name, network]) => (
            <span>
              <strong>{name}</strong>
              {network.IPAddress && (
                <>
                  {" "}
                  <code>
                    {network.IPAddress}/{network.IPPrefixLen}
                  </code>
                </>
              )}
              {network.Gateway && <span className="muted"> gateway {network.Gateway}</span>}
              {network.MacAddress && <span className="muted"> mac {network.MacAddress}</span>}
              {network.Aliases && network.Aliases.length > 0 && <span className="muted"> aliases {network.Aliases.join(", ")}</span>}
            </span>
          ))}
        />
      </section>

      <section className="panel">
        <h2>Environment</h2>
        <List items={env.map((entry) => <code className="cd-wrap">{entry}</code>)} empty="No environment variables" />
      </section>

      <section className="panel">
        <h2>Labels</h2>
        {labels.length === 0 ? (
          <span className="muted">No labels</span>
        ) : (
          <dl className="kv">
            {labels.map(([key, value]) => (
              <Row key={key} label={key}>
                <code className="cd-wrap">{value}</code>
              </Row>
            ))}
          </dl>
        )}
      </section>

      {platform && (
        <section className="panel">
          <h2>dcp</h2>
          <dl className="kv">
            <Row label="Origin">{platform.origin === "dcp" ? "created through dcp" : "found on the engine"}</Row>
            {platform.created_by_name && <Row label="Created by">{platform.created_by_name}</Row>}
            <Row label="Known since">{formatTime(platform.known_since)}</Row>
            {platform.last_action && (
              <Row label="Last operation">
                {platform.last_action} <StatusBadge status={platform.last_status} />
                {platform.last_by_name && <span className="muted"> by {platform.last_by_name}</span>}
                {platform.last_at && <span className="muted"> {formatAgo(platform.last_at)}</span>}
              </Row>
            )}
          </dl>
        </section>
      )}

      <LazyDetails className="panel cd-raw" summary="Raw inspect JSON">
        {() => (
          <pre className="cd-json" data-testid="inspect-json">
            {JSON.stringify(detail.inspect, null, 2)}
          </pre>
        )}
      </LazyDetails>
    </div>
  );
}
