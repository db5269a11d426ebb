// Form helpers shared by the resource pages: `key=value` lines, trimmed optional strings,
// Docker's names, and the props of the dialogs that create a resource on a host.

/** Parses `key=value` lines (blank lines ignored) into a map; errors name the bad line. */
export function parsePairs(text: string, what = "label"): { value: Record<string, string>; error: string | null } {
  const value: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) return { value, error: `line ${i + 1}: a ${what} is key=value` };
    const key = line.slice(0, eq).trim();
    if (!key) return { value, error: `line ${i + 1}: the ${what} has no key` };
    value[key] = line.slice(eq + 1).trim();
  }
  return { value, error: null };
}

/** A trimmed string, or undefined when empty (left out of a request body). */
export function optional(text: string): string | undefined {
  const trimmed = text.trim();
  return trimmed ? trimmed : undefined;
}

/** Names Docker accepts for volumes and networks (as the server checks them). */
export function nameError(name: string): string | null {
  const trimmed = name.trim();
  if (!trimmed) return "a name is required";
  if (trimmed.length < 2 || trimmed.length > 128) return "2 to 128 characters";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(trimmed)) return "letters, digits, '_', '.' and '-' (starting with a letter or digit)";
  return null;
}

/** The props of a dialog creating a resource (volume, network) on a host. */
export interface CreateDialogProps {
  /** Admins may ask for privileged options. */
  admin: boolean;
  hostOptions: { value: string; label: string }[];
  defaultHost: string;
  onClose: () => void;
  onCreated: () => void;
}
