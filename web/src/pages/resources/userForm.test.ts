import { describe, expect, it } from "vitest";
import type { UserView } from "../../api/types";
import { buildCreateBody, buildUpdateBody, emptyUserForm, userFormFrom, validateUserForm, type UserFormValues } from "./userForm";

const valid: UserFormValues = {
  ...emptyUserForm(),
  username: "  alice ",
  email: " alice@example.com ",
  full_name: " Alice Liddell ",
  role: "operator",
  password: "wonderland-9",
};

const existing: UserView = {
  id: "01a219dd-7e73-71af-a602-0c544c36c948",
  username: "alice",
  email: "alice@example.com",
  full_name: "Alice Liddell",
  role: "operator",
  is_active: true,
  must_change_password: false,
  created_at: "2026-11-26T10:00:00Z",
  updated_at: "2026-11-26T10:00:00Z",
  last_login_at: null,
  version: 3,
};

describe("validateUserForm", () => {
  it("accepts a complete form", () => {
    expect(validateUserForm(valid, "create")).toEqual({});
  });

  it("names each bad field", () => {
    const errors = validateUserForm({ ...valid, username: "_x", email: "nobody", full_name: "  ", password: "short" }, "create");
    expect(Object.keys(errors).sort()).toEqual(["email", "full_name", "password", "username"]);
    expect(errors.username).toMatch(/3 to 64/);
    expect(errors.password).toMatch(/at least 8/);
  });

  it("checks usernames like the server", () => {
    expect(validateUserForm({ ...valid, username: "-alice" }, "create").username).toMatch(/start with a letter or digit/);
    expect(validateUserForm({ ...valid, username: "al.ice_2-x" }, "create").username).toBeUndefined();
  });

  it("refuses a password that is the username or one repeated character", () => {
    expect(validateUserForm({ ...valid, username: "alice1234", password: "ALICE1234" }, "create").password).toMatch(/username/);
    expect(validateUserForm({ ...valid, password: "aaaaaaaaaa" }, "create").password).toMatch(/repeated/);
  });

  it("accepts localhost addresses and rejects empty labels", () => {
    expect(validateUserForm({ ...valid, email: "admin@localhost" }, "create").email).toBeUndefined();
    expect(validateUserForm({ ...valid, email: "a@b..com" }, "create").email).toBeDefined();
  });

  it("needs no password when editing, but checks one that is given", () => {
    const form = { ...userFormFrom(existing) };
    expect(form.password).toBe("");
    expect(validateUserForm(form, "edit")).toEqual({});
    expect(validateUserForm({ ...form, password: "1234" }, "edit").password).toBeDefined();
  });
});

describe("request bodies", () => {
  it("trims the create body", () => {
    expect(buildCreateBody(valid)).toEqual({
      username: "alice",
      email: "alice@example.com",
      full_name: "Alice Liddell",
      role: "operator",
      password: "wonderland-9",
      must_change_password: true,
    });
  });

  it("sends only what changed in a PATCH", () => {
    const form = userFormFrom(existing);
    expect(buildUpdateBody(existing, form)).toEqual({});
    expect(buildUpdateBody(existing, { ...form, email: "ALICE@example.com" })).toEqual({});
    expect(buildUpdateBody(existing, { ...form, role: "viewer", is_active: false })).toEqual({ role: "viewer", is_active: false });
    expect(buildUpdateBody(existing, { ...form, full_name: " Alice L. ", email: "al@example.org", password: "new-pass-123" })).toEqual({
      full_name: "Alice L.",
      email: "al@example.org",
      password: "new-pass-123",
    });
  });
});
