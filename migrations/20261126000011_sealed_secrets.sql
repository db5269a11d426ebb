-- Secrets dcp must use later (SSH private keys, SSH passwords), sealed with AEAD under the
-- master key (`DCP_MASTER_KEY`, `DCP_MASTER_KEY_FILE` or `<data dir>/master-key`), which is
-- never stored here. Events and the API carry the secret's id only.
CREATE TABLE sealed_secrets
(
    id         uuid PRIMARY KEY,
    -- What it is (`ssh_private_key`, `ssh_password`): bound into the seal, so a secret
    -- cannot be passed off as another kind.
    kind       text        NOT NULL,
    -- Which master key sealed it (a digest of the key, not the key).
    key_id     text        NOT NULL,
    -- nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes), ChaCha20-Poly1305.
    sealed     bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
