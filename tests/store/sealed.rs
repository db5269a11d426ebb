//! Sealed secrets in a real database: stored encrypted under the master key, opened only
//! with that key and only where and as what they were sealed.

use base64::Engine;
use dcp::secrets::sealed::{self, MasterKey, SealError, SecretKind};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::common::migrated_pool;

fn master_key() -> MasterKey {
    let bytes: [u8; 32] = rand::random();
    MasterKey::from_base64(&SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
    .unwrap()
}

#[tokio::test]
async fn secrets_are_stored_sealed_and_open_only_as_sealed() {
    let pool = migrated_pool().await;
    let key = master_key();
    let private_key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    let id = sealed::store(&pool, &key, SecretKind::SshPrivateKey, private_key, None)
        .await
        .unwrap();
    let password = sealed::store(
        &pool,
        &key,
        SecretKind::SshPassword,
        b"hunter2-but-longer",
        None,
    )
    .await
    .unwrap();

    let opened = sealed::load(&pool, &key, id, SecretKind::SshPrivateKey)
        .await
        .unwrap();
    assert_eq!(opened.expose_secret().as_slice(), private_key);

    // Nothing in the table reads as the secrets, in any encoding PostgreSQL would print.
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(t::text || encode(sealed, 'escape') || encode(sealed, 'base64'), '|') FROM sealed_secrets t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    for needle in ["OPENSSH", "b3BlbnNzaC1rZXkt", "hunter2"] {
        assert!(!dump.contains(needle), "{needle} is readable in the table");
    }

    // Another master key, another kind, a sealed value moved to another row: refused.
    assert!(matches!(
        sealed::load(&pool, &master_key(), id, SecretKind::SshPrivateKey).await,
        Err(SealError::OtherKey { .. })
    ));
    assert!(matches!(
        sealed::load(&pool, &key, id, SecretKind::SshPassword).await,
        Err(SealError::NotFound(_))
    ));
    sqlx::query(
        "UPDATE sealed_secrets SET sealed = (SELECT sealed FROM sealed_secrets WHERE id = $1), kind = 'ssh_private_key' WHERE id = $2",
    )
    .bind(id)
    .bind(password)
    .execute(&pool)
    .await
    .unwrap();
    assert!(matches!(
        sealed::load(&pool, &key, password, SecretKind::SshPrivateKey).await,
        Err(SealError::Tampered(_))
    ));

    assert!(sealed::forget(&pool, id).await.unwrap());
    assert!(matches!(
        sealed::load(&pool, &key, id, SecretKind::SshPrivateKey).await,
        Err(SealError::NotFound(_))
    ));
    assert!(!sealed::forget(&pool, Uuid::now_v7()).await.unwrap());
}
