//! Access tokens: short-lived HS256 JWTs with the algorithm pinned and iss, aud, sub,
//! sid, jti, typ and exp checked. The role is not trusted from the token: it is looked
//! up on every request.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{
    decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ISSUER: &str = "dcp";
pub const AUDIENCE: &str = "dcp-api";
pub const ACCESS_TYPE: &str = "access";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id.
    pub sid: String,
    pub jti: String,
    pub typ: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// Signs and checks access tokens with one secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    /// How long an access token lives.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// A new access token for `user_id` in `session_id`.
    pub fn issue(&self, user_id: Uuid, session_id: Uuid) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            jti: Uuid::new_v4().to_string(),
            typ: ACCESS_TYPE.into(),
            iat: now,
            nbf: now,
            exp: now + self.access_ttl.as_secs() as i64,
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks signature, algorithm, issuer, audience, time and type.
    pub fn verify(&self, token: &str) -> Result<(Uuid, Uuid), TokenError> {
        let data =
            decode::<AccessClaims>(token, &self.decoding, &self.validation).map_err(|e| match e
                .kind()
            {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        if claims.typ != ACCESS_TYPE || claims.jti.is_empty() {
            return Err(TokenError::Invalid);
        }
        let user_id = claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        let session_id = claims.sid.parse().map_err(|_| TokenError::Invalid)?;
        Ok((user_id, session_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(600),
        )
    }

    #[test]
    fn issued_tokens_verify() {
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys().issue(user, session).unwrap();
        assert_eq!(keys().verify(&token), Ok((user, session)));
    }

    #[test]
    fn wrong_secret_alg_none_and_garbage_are_invalid() {
        let token = keys().issue(Uuid::new_v4(), Uuid::new_v4()).unwrap();
        let other = TokenKeys::new(
            b"another secret of enough length!",
            Duration::from_secs(600),
        );
        assert_eq!(other.verify(&token), Err(TokenError::Invalid));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = token.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            payload
        );
        assert_eq!(keys().verify(&none), Err(TokenError::Invalid));
        assert_eq!(keys().verify("not.a.token"), Err(TokenError::Invalid));
    }
}
