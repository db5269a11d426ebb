// Renaming and retagging a host.
import { useState } from "react";
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import type { HostView } from "../../api/types";
import { ErrorBanner } from "../../components/ErrorBanner";
import { Field, fieldError, generalError } from "../../components/Field";
import { FormDialog } from "../../components/FormDialog";
import { useSubmit } from "../../hooks/useSubmit";
import { toastSuccess } from "../../stores/toasts";
import { parseTags, tagsProblem } from "../wizard/wizardData";

export function EditHostModal({ host, onClose, onSaved }: { host: HostView; onClose: () => void; onSaved: () => void }) {
  const [name, setName] = useState(host.name);
  const [tags, setTags] = useState((host.ssh?.tags ?? []).join(", "));
  const parsed = parseTags(tags);
  const tagProblem = tagsProblem(parsed);
  const { run, busy, error } = useSubmit(async (body: { name?: string; tags?: string[] }) => {
    await api.patch<HostView>(paths.hosts.update(host.id), body);
    toastSuccess(`Host ${body.name ?? host.name} saved`);
    onSaved();
  });

  const save = async () => {
    if (tagProblem || !name.trim()) return;
    const body: { name?: string; tags?: string[] } = {};
    if (name !== host.name) body.name = name;
    if (parsed.join(",") !== (host.ssh?.tags ?? []).join(",")) body.tags = parsed;
    if (!body.name && !body.tags) {
      onClose();
      return;
    }
    await run(body);
  };

  return (
    <FormDialog
      title={`Edit ${host.name}`}
      onClose={onClose}
      onSubmit={save}
      formId="edit-host-form"
      submitLabel="Save"
      busy={busy}
      disabled={!!tagProblem || !name.trim()}
      cancelDisabled={busy}
    >
      <ErrorBanner error={generalError(error, ["name", "tags"])} />
      <Field label="Name" error={fieldError(error, "name")}>
        <input name="name" value={name} onChange={(event) => setName(event.target.value)} maxLength={64} required />
      </Field>
      <Field label="Tags" error={(tags.trim() && tagProblem) || fieldError(error, "tags")} hint="Comma-separated.">
        <input name="tags" value={tags} onChange={(event) => setTags(event.target.value)} />
      </Field>
    </FormDialog>
  );
}
