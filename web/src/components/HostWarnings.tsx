// The hosts that did not answer a list across hosts: their items are missing from it.
import type { HostAnswer } from "../api/types";
import { useHostNames } from "../stores/hosts";

export function HostWarnings({ hosts }: { hosts: HostAnswer[] | undefined }) {
  const down = (hosts ?? []).filter((h) => h.status !== "ok");
  // The host list (for names) is asked for only when there is something to say.
  return down.length === 0 ? null : <DownHosts down={down} />;
}

function DownHosts({ down }: { down: HostAnswer[] }) {
  const hostName = useHostNames();
  return (
    <div className="warning" role="status" data-testid="host-warning">
      {down.map((h) => (
        <div key={h.host}>
          <strong>
            Host {hostName(h.host)} is {h.status}
          </strong>
          {h.error ? `: ${h.error}` : ""} — its items are not listed.
        </div>
      ))}
    </div>
  );
}
