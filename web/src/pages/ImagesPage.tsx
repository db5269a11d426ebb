// Images on every host: filter by reference and host, pull one (with live per-layer
// progress over the task socket) and remove one.
import { useCallback, useState } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { AcceptedOperation, ImageList } from "../api/types";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorBanner } from "../components/ErrorBanner";
import { Field, fieldError, generalError } from "../components/Field";
import { FormDialog } from "../components/FormDialog";
import { hostOptions, HostSelect } from "../components/HostSelect";
import { ResourceListPage } from "../components/ResourceListPage";
import { useDebounced } from "../hooks/useDebounced";
import { useSubmit } from "../hooks/useSubmit";
import { formatBytes, formatTime } from "../format";
import { useQuery } from "../hooks/useQuery";
import { can, useRole } from "../stores/auth";
import { toastSuccess } from "../stores/toasts";
import { useHosts } from "../stores/hosts";
import { PullTask, type PullRequestInfo } from "./resources/PullTask";
import "./resources/resources.css";

type ImageItem = ImageList["items"][number];

export function ImagesPage() {
  const role = useRole();
  const mayMutate = can(role, "mutate");
  const [host, setHost] = useState("");
  const [reference, setReference] = useState("");
  const wanted = useDebounced(reference.trim());
  const query = useQuery(
    (signal) => api.get<ImageList>(paths.images.list(), { host: host || undefined, reference: wanted || undefined }, signal),
    [host, wanted],
    { liveTypes: ["image"] },
  );
  const hosts = useHosts();
  const options = hostOptions(hosts, query.data?.hosts);
  const [pullOpen, setPullOpen] = useState(false);
  const [pulls, setPulls] = useState<PullRequestInfo[]>([]);
  const [removing, setRemoving] = useState<ImageItem | null>(null);
  const reload = query.reload;

  const items = query.data?.items ?? [];
  return (
    <ResourceListPage
      title="Images"
      create={mayMutate ? { label: "Pull image", onClick: () => setPullOpen(true) } : undefined}
      query={query}
      hosts={query.data?.hosts}
      search={{ label: "Filter by reference", placeholder: "Filter by reference…", value: reference, onChange: setReference }}
      hostFilter={{ value: host, onChange: setHost, options }}
      notices={pulls.map((pull) => (
        <PullTask
          key={pull.operationId}
          pull={pull}
          onDone={(state) => {
            if (state.status === "succeeded") toastSuccess(`Pulled ${pull.reference}`);
            reload();
          }}
          onDismiss={() => setPulls((all) => all.filter((p) => p.operationId !== pull.operationId))}
        />
      ))}
      count={items.length}
      empty={wanted ? `No image matches “${wanted}”.` : "No images."}
      after={
        <>
          {pullOpen && (
            <PullDialog
              hostOptions={options}
              defaultHost={host || options[0]?.value || "local"}
              onClose={() => setPullOpen(false)}
              onAccepted={(pull) => {
                setPulls((all) => [pull, ...all]);
                setPullOpen(false);
              }}
            />
          )}
          {removing && <RemoveImageDialog image={removing} onClose={() => setRemoving(null)} onRemoved={reload} />}
        </>
      }
    >
      <table className="res-table" aria-label="Images">
        <thead>
          <tr>
            <th>Tags</th>
            <th>ID</th>
            <th className="num">Size</th>
            <th>Created</th>
            <th>Host</th>
            <th className="num">Containers</th>
            {mayMutate && <th />}
          </tr>
        </thead>
        <tbody>
          {items.map((image) => {
            const name = image.repo_tags[0] ?? image.short_id;
            return (
              <tr key={`${image.host}/${image.id}`} data-testid="image-row">
                <td>
                  {image.repo_tags.length === 0 ? (
                    <span className="muted">&lt;none&gt;</span>
                  ) : (
                    image.repo_tags.map((tag) => (
                      <div key={tag} className="mono">
                        {tag}
                      </div>
                    ))
                  )}
                </td>
                <td className="mono" title={image.id}>
                  {image.short_id}
                </td>
                <td className="num">{formatBytes(image.size)}</td>
                <td className="nowrap">{formatTime(image.created_at)}</td>
                <td>{image.host}</td>
                <td className="num">{image.containers >= 0 ? image.containers : "—"}</td>
                {mayMutate && (
                  <td>
                    <div className="res-actions">
                      <button type="button" className="danger" aria-label={`Remove image ${name}`} onClick={() => setRemoving(image)}>
                        Remove
                      </button>
                    </div>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </ResourceListPage>
  );
}

function PullDialog({
  hostOptions: options,
  defaultHost,
  onClose,
  onAccepted,
}: {
  hostOptions: { value: string; label: string }[];
  defaultHost: string;
  onClose: () => void;
  onAccepted: (pull: PullRequestInfo) => void;
}) {
  const [image, setImage] = useState("");
  const [tag, setTag] = useState("");
  const [host, setHost] = useState(defaultHost);
  const [localError, setLocalError] = useState<string | null>(null);
  const pull = useCallback(
    (body: { image: string; tag?: string; host: string }) => api.post<AcceptedOperation>(paths.images.pull(), body),
    [],
  );
  const { run, busy, error } = useSubmit(pull);
  const submit = async () => {
    const name = image.trim();
    if (!name) {
      setLocalError("an image is required");
      return;
    }
    setLocalError(null);
    const body = { image: name, tag: tag.trim() || undefined, host };
    const result = await run(body);
    if (result.ok) {
      const reference = body.tag ? `${name}:${body.tag}` : name;
      onAccepted({ operationId: result.value.operation_id, reference, host: result.value.host || host });
    }
  };
    return (
    <FormDialog
      title="Pull image"
      onClose={onClose}
      onSubmit={submit}
      formId="pull-image-form"
      submitLabel="Pull"
      busyLabel="Pulling…"
      busy={busy}
    >
      <ErrorBanner error={generalError(error, ["image", "tag", "host"])} />
      <Field label="Image" error={localError ?? fieldError(error, "image")} hint="e.g. nginx or registry:5000/team/app">
        <input value={image} onChange={(e) => setImage(e.target.value)} autoComplete="off" required />
      </Field>
      <Field label="Tag" error={fieldError(error, "tag")} hint="default latest">
        <input value={tag} onChange={(e) => setTag(e.target.value)} placeholder="latest" autoComplete="off" />
      </Field>
      <Field label="Host" error={fieldError(error, "host")}>
        <HostSelect label="Host" value={host} onChange={setHost} options={options} />
      </Field>
    </FormDialog>
  );
}

function RemoveImageDialog({ image, onClose, onRemoved }: { image: ImageItem; onClose: () => void; onRemoved: () => void }) {
  const [target, setTarget] = useState(image.repo_tags.length === 1 ? image.repo_tags[0]! : image.id);
  const [force, setForce] = useState(false);
  const name = image.repo_tags[0] ?? image.short_id;
  return (
    <ConfirmDialog
      title={`Remove image ${name}`}
      confirmLabel="Remove"
      onClose={onClose}
      onConfirm={async () => {
        await api.delete(paths.images.remove(target), { host: image.host, force: force || undefined });
        toastSuccess(`Removed ${target === image.id ? image.short_id : target}`);
        onRemoved();
      }}
    >
      <p>
        Remove <strong className="mono">{name}</strong> from host <strong>{image.host}</strong>?
      </p>
      {image.repo_tags.length > 1 && (
        <Field label="What to remove" hint="A tag only untags; the image goes with its last tag.">
          <select value={target} onChange={(e) => setTarget(e.target.value)}>
            <option value={image.id}>The whole image ({image.short_id})</option>
            {image.repo_tags.map((tag) => (
              <option key={tag} value={tag}>
                The tag {tag}
              </option>
            ))}
          </select>
        </Field>
      )}
      <label className="check">
        <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} />
        Force (even if containers use it or it has several tags)
      </label>
    </ConfirmDialog>
  );
}
