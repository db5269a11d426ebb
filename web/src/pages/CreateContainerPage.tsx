// Create a container: the safe options for everyone who may create, and — for admins only —
// the options that reach the host, which need a recorded reason.
import { useState, type FormEvent, type ReactNode } from "react";
import { api, ApiError, errorMessage } from "../api/client";
import { paths } from "../api/paths";
import type { CreateOutcome, HostView, ImageList } from "../api/types";
import { ErrorBanner } from "../components/ErrorBanner";
import { Field } from "../components/Field";
import { PageHeader } from "../components/PageHeader";
import { useQuery } from "../hooks/useQuery";
import { navigate } from "../router";
import { containerHref } from "../pageLinks";
import { can, useRole } from "../stores/auth";
import { useHostList } from "../stores/hosts";
import { toastError, toastSuccess } from "../stores/toasts";
import { buildCreateRequest, EMPTY_FORM, FormError, hostReaching, type ContainerForm } from "./createContainerForm";

export function CreateContainerPage() {
  const role = useRole();
  const [form, setForm] = useState<ContainerForm>(EMPTY_FORM);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const hosts = useHostList();
  const images = useQuery((signal) => api.get<ImageList>(paths.images.list(), { host: form.host }, signal), [form.host]);

  if (!can(role, "mutate")) {
    return (
      <div className="empty">
        <h1>Not allowed</h1>
        <p>Viewers cannot create containers.</p>
      </div>
    );
  }
  const isAdmin = can(role, "admin");
  const set = <K extends keyof ContainerForm>(key: K) => (value: ContainerForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const text = (key: keyof ContainerForm) => ({
    name: key,
    value: form[key] as string,
    onChange: (e: { target: { value: string } }) => set(key)(e.target.value as never),
  });
  const messageFor = (...fields: string[]) => {
    if (error instanceof FormError || error instanceof ApiError) {
      const field = error.field ?? "";
      if (fields.some((f) => field === f || field.startsWith(`${f}.`) || field.startsWith(`${f}[`))) return error.message;
    }
    return null;
  };
  const reaching = hostReaching(form);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    let request;
    try {
      request = buildCreateRequest(form, role ?? "viewer");
    } catch (err) {
      setError(err);
      return;
    }
    setBusy(true);
    try {
      const outcome = await api.post<CreateOutcome>(paths.containers.create(), { ...request }, { host: form.host });
      toastSuccess(outcome.started ? `Created and started ${outcome.name}` : `Created ${outcome.name}`);
      if (outcome.start_error) toastError(outcome.start_error, `${outcome.name} was created but did not start`);
      navigate(containerHref(outcome.container_id, outcome.host));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const tags = (images.data?.items ?? []).flatMap((image) => image.repo_tags.filter((t) => t !== "<none>:<none>"));
  const unfielded = error && !(error instanceof FormError) && !(error instanceof ApiError && error.field) ? error : null;

  return (
    <form onSubmit={submit} aria-label="Create container">
      <PageHeader title="Create container">
        <button type="button" onClick={() => navigate("/containers")}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Creating…" : "Create"}
        </button>
      </PageHeader>
      <ErrorBanner error={unfielded} />
      {(error instanceof FormError || (error instanceof ApiError && error.field)) && (
        <div className="error-banner" role="alert">
          {errorMessage(error)}
        </div>
      )}
      <Section title="Container">
        <div className="form-grid">
          <Field label="Host">
            <select name="host" value={form.host} onChange={(e) => set("host")(e.target.value)}>
              {(hosts.data ?? [{ id: "local", name: "local", status: "active" } as HostView]).map((h) => (
                <option key={h.id} value={h.name} disabled={h.status === "disabled"}>
                  {h.name} ({h.status})
                </option>
              ))}
            </select>
          </Field>
          <Field label="Image" error={messageFor("image")} hint="e.g. nginx:1.27 — pull it on the Images page first">
            <input {...text("image")} list="image-tags" required autoComplete="off" />
            <datalist id="image-tags">
              {tags.map((t) => (
                <option key={t} value={t} />
              ))}
            </datalist>
          </Field>
          <Field label="Name" error={messageFor("name")} hint="optional; letters, digits, _ . -">
            <input {...text("name")} autoComplete="off" />
          </Field>
          <Field label="Command" error={messageFor("command")} hint="arguments, quoted as in a shell; no shell runs them">
            <input {...text("command")} autoComplete="off" />
          </Field>
          <Field label="Entrypoint" error={messageFor("entrypoint")}>
            <input {...text("entrypoint")} autoComplete="off" />
          </Field>
          <Field label="Restart policy">
            <select name="restart" value={form.restart} onChange={(e) => set("restart")(e.target.value as ContainerForm["restart"])}>
              <option value="no">no</option>
              <option value="always">always</option>
              <option value="unless-stopped">unless-stopped</option>
              <option value="on-failure">on-failure</option>
            </select>
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" name="start" checked={form.start} onChange={(e) => set("start")(e.target.checked)} /> Start it once created
        </label>
        <label className="check">
          <input type="checkbox" name="tty" checked={form.tty} onChange={(e) => set("tty")(e.target.checked)} /> Allocate a TTY
        </label>
      </Section>
      <Section title="Environment and labels">
        <div className="form-grid">
          <Field label="Environment" error={messageFor("env")} hint="KEY=value, one per line">
            <textarea {...text("env")} rows={4} />
          </Field>
          <Field label="Labels" error={messageFor("labels")} hint="key=value, one per line (dcp.* is reserved)">
            <textarea {...text("labels")} rows={4} />
          </Field>
        </div>
      </Section>
      <Section title="Network, ports and storage">
        <div className="form-grid">
          <Field label="Network" error={messageFor("network")} hint={isAdmin ? "bridge (default), none, a network's name, or host (host access)" : "bridge (default), none, or a network's name"}>
            <input {...text("network")} autoComplete="off" />
          </Field>
          <Field label="Ports" error={messageFor("ports")} hint="[ip:]host:container[/udp] or container, one per line">
            <textarea {...text("ports")} rows={3} />
          </Field>
          <Field label="Volumes" error={messageFor("volumes")} hint="volume-name:/path/in/container[:ro], one per line">
            <textarea {...text("volumes")} rows={3} />
          </Field>
        </div>
      </Section>
      <Section title="Resources">
        <div className="form-grid">
          <Field label="Memory limit (MiB)" error={messageFor("memory_bytes")}>
            <input {...text("memoryMiB")} inputMode="numeric" />
          </Field>
          <Field label="CPUs" error={messageFor("cpus")} hint="e.g. 0.5">
            <input {...text("cpus")} inputMode="decimal" />
          </Field>
          <Field label="User" error={messageFor("user")}>
            <input {...text("user")} />
          </Field>
          <Field label="Working directory" error={messageFor("working_dir")}>
            <input {...text("workingDir")} />
          </Field>
        </div>
      </Section>
      {isAdmin && (
        <Section title="Host access (admins only)">
          <div className="warning">
            These options let the container reach the host. They need a reason, which is recorded in the audit log with the request.
          </div>
          <label className="check">
            <input type="checkbox" name="privileged" checked={form.privileged} onChange={(e) => set("privileged")(e.target.checked)} /> Privileged
          </label>
          <div className="form-grid">
            <Field label="Added capabilities" error={messageFor("cap_add")} hint="e.g. NET_ADMIN, comma-separated">
              <input {...text("capAdd")} />
            </Field>
            <Field label="Devices" error={messageFor("devices")} hint="/dev/fuse or /dev/sda:/dev/xvda:rwm">
              <input {...text("devices")} />
            </Field>
            <Field label="Security options" error={messageFor("security_opt")} hint="e.g. seccomp=unconfined">
              <input {...text("securityOpt")} />
            </Field>
            <Field label="Bind mounts" error={messageFor("binds")} hint="/host/path:/container/path[:ro], one per line">
              <textarea {...text("binds")} rows={3} />
            </Field>
            <Field label="Sysctls" error={messageFor("sysctls")} hint="key=value, one per line">
              <textarea {...text("sysctls")} rows={3} />
            </Field>
            <Field label="PID namespace" error={messageFor("pid_mode")} hint="host or container:NAME">
              <input {...text("pidMode")} />
            </Field>
            <Field label="IPC namespace" error={messageFor("ipc_mode")}>
              <input {...text("ipcMode")} />
            </Field>
            <Field label="UTS namespace" error={messageFor("uts_mode")}>
              <input {...text("utsMode")} />
            </Field>
          </div>
          <Field
            label="Reason"
            error={messageFor("reason", "allow_privileged")}
            hint={reaching.length ? `Required: this container uses ${reaching.join(", ")}.` : "Required when any option above is used."}
          >
            <input {...text("reason")} />
          </Field>
        </Section>
      )}
    </form>
  );
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="panel">
      <h2>{title}</h2>
      {children}
    </section>
  );
}
