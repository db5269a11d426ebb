//! argon2id password hashing (m=19456 KiB, t=2, p=1) off the async threads, with
//! bounded concurrency, and a dummy verification for unknown users so response time
//! does not tell whether an account exists.
//!
//! Hashes run on a few dedicated threads rather than tokio's blocking pool: each hash
//! allocates 19 MiB, and the allocator keeps freed memory per thread, so hashes spread
//! over many pool threads would leave the server holding 19 MiB per thread that ever
//! hashed. On their own threads the same memory is reused.

use std::sync::Arc;

use anyhow::Context;
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest password accepted (hashing cost must stay bounded).
pub const MAX_PASSWORD_LEN: usize = 256;

/// The most hashing threads (each keeps 19 MiB of working memory).
pub const MAX_HASHING_THREADS: usize = 4;

/// Hashes and verifies passwords on its own threads, a few at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
    workers: std::sync::mpsc::SyncSender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts `count` hashing threads that take jobs from one queue.
fn start_workers(count: usize) -> anyhow::Result<std::sync::mpsc::SyncSender<Job>> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Job>(1024);
    let receiver = Arc::new(std::sync::Mutex::new(receiver));
    for i in 0..count {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("dcp-argon2-{i}"))
            .spawn(move || loop {
                let job = match receiver.lock() {
                    Ok(receiver) => receiver.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    // Every hasher handle is gone.
                    Err(_) => return,
                }
            })
            .context("Failed to start a hashing thread")?;
    }
    Ok(sender)
}

impl PasswordHasher {
    /// Runs `work` on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        let workers = self.workers.clone();
        // The queue is bounded (the permits keep it short): waiting for room blocks, so
        // it is done off the async threads.
        tokio::task::spawn_blocking(move || workers.send(job))
            .await
            .context("Failed to queue a hash")?
            .map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
        result.await.context("a hashing thread failed")
    }
}

/// Why a new password is not acceptable; the message is shown to the user.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!("password must be at most {MAX_PASSWORD_LEN} bytes"));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err("password must not be the username".into());
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(' '))
    {
        return Err("password must not be one repeated character".into());
    }
    Ok(())
}

thread_local! {
    /// The argon2 working memory of this hashing thread (19 MiB), reused by every hash:
    /// allocating it per hash makes the allocator hold on to many copies.
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() != blocks {
            *memory = vec![argon2::Block::new(); blocks];
        }
        let result = work(&mut memory[..]);
        // The working memory holds values derived from the password: not left behind.
        memory.fill(argon2::Block::new());
        result
    })
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`.
fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    let params = argon2::Params::default();
    let argon2 = Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    with_memory(params.block_count(), |memory| {
        argon2.hash_password_into_with_memory(password, &salt, &mut out, memory)
    })
    .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
    let hash = argon2::PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant, version and
/// parameters it names), compared in constant time.
fn verify_blocking(password: &[u8], phc: &str) -> bool {
    use argon2::password_hash::phc::Output;
    let Ok(hash) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    // A PHC string without `v=` is version 0x10, as the reference implementation has it.
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::V0x10,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = with_memory(params.block_count(), |memory| {
        argon2.hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
    });
    computed.is_ok() && Output::new(&out).is_ok_and(|output| output == *expected)
}

impl PasswordHasher {
    /// `concurrency` hashes may run at once (each takes ~19 MiB, kept by its thread, and one
    /// core); at most [`MAX_HASHING_THREADS`].
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = concurrency.clamp(1, MAX_HASHING_THREADS);
        let workers = start_workers(concurrency)?;
        // Made on a hashing thread, in the memory it keeps anyway.
        let dummy = uuid::Uuid::new_v4().to_string();
        let (reply, result) = std::sync::mpsc::channel();
        workers
            .send(Box::new(move || {
                let _ = reply.send(hash_blocking(dummy.as_bytes()));
            }))
            .map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
        let dummy_hash = result
            .recv()
            .context("the hashing thread failed")?
            .context("Failed to prepare the dummy hash")?;
        Ok(PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: Arc::new(dummy_hash),
            workers,
        })
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        // The permit moves into the blocking task: if the request is dropped, the hash
        // still counts against the limit until it really finishes.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hasher closed")?;
        let password = password.expose_secret().as_bytes().to_vec();
        self.run(move || {
            let _permit = permit;
            hash_blocking(&password)
        })
        .await?
    }

    /// True when `password` matches `hash`. With no hash (unknown user) a dummy hash is
    /// verified so the answer takes as long, and is always false.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hasher closed")?;
        let known = hash.is_some();
        let hash = hash
            .map(str::to_string)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.expose_secret().as_bytes().to_vec();
        let matches = self
            .run(move || {
                let _permit = permit;
                verify_blocking(&password, &hash)
            })
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = PasswordHasher::new(2).unwrap();
        let password = SecretString::from("correct horse battery");
        let hash = hasher.hash(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        assert!(!hasher
            .verify(&SecretString::from("wrong"), Some(&hash))
            .await
            .unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        // Hashes stored before the memory was reused still verify, and ours verify there.
        let theirs = Argon2::default()
            .hash_password(b"a stored password")
            .unwrap()
            .to_string();
        assert!(verify_blocking(b"a stored password", &theirs));
        assert!(!verify_blocking(b"another password", &theirs));
        let ours = hash_blocking(b"a new password").unwrap();
        assert!(Argon2::default()
            .verify_password(b"a new password", ours.as_str())
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"not it", ours.as_str())
            .is_err());
        // Other parameters (a hash from another deployment) use memory of their size.
        let small = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"small")
        .unwrap()
        .to_string();
        assert!(verify_blocking(b"small", &small));
        assert!(!verify_blocking(b"small", "not a phc string"));
        assert!(!verify_blocking(
            b"small",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ"
        ));
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", "bob").is_err());
        assert!(check_policy("aaaaaaaaaa", "bob").is_err());
        assert!(check_policy("alice-the-admin", "alice-the-admin").is_err());
        assert!(check_policy(&"x".repeat(300), "bob").is_err());
        assert!(check_policy("a decent passphrase", "bob").is_ok());
    }
}
