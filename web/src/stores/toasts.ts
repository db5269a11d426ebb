// Notices shown in the corner: every failed action's API message, and confirmations.
import { create } from "zustand";
import { errorMessage } from "../api/client";

export interface Toast {
  id: number;
  kind: "error" | "success" | "info";
  message: string;
}

interface ToastState {
  toasts: Toast[];
  push(kind: Toast["kind"], message: string): void;
  dismiss(id: number): void;
}

let nextId = 1;

export const useToasts = create<ToastState>()((set) => ({
  toasts: [],
  push(kind, message) {
    const id = nextId++;
    set((state) => ({ toasts: [...state.toasts.slice(-4), { id, kind, message }] }));
    // Errors stay until dismissed (a user who looked away must still see what failed).
    if (kind !== "error") setTimeout(() => set((state) => ({ toasts: state.toasts.filter((t) => t.id !== id) })), 4_000);
  },
  dismiss(id) {
    set((state) => ({ toasts: state.toasts.filter((t) => t.id !== id) }));
  },
}));

/** Shows an action's failure with the API's message. */
export function toastError(error: unknown, what?: string): void {
  const message = errorMessage(error);
  useToasts.getState().push("error", what ? `${what}: ${message}` : message);
}

export function toastSuccess(message: string): void {
  useToasts.getState().push("success", message);
}
