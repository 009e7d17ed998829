//! API tokens: who may do what.
//!
//! Tokens are compared as SHA-256 digests in constant time (every
//! configured token is compared, whatever matches), and never logged.

use sha2::{Digest, Sha256};

use crate::config::AuthConfig;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (`GET /ping`).
    Public,
    /// An invoke token or the admin token: run actions, read results.
    Invoke,
    /// The admin token: everything else.
    Admin,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, or not a configured one (401).
    Unauthenticated,
    /// A valid invoke token on an admin route (403).
    Forbidden,
}

/// The configured tokens, as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    admin: Option<[u8; 32]>,
    invoke: Vec<[u8; 32]>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// Digests of the configured tokens.
    pub fn new(cfg: &AuthConfig) -> Self {
        Self {
            admin: cfg.admin.as_deref().map(|t| digest(t.as_bytes())),
            invoke: cfg.invoke.iter().map(|t| digest(t.as_bytes())).collect(),
        }
    }

    /// Whether any token is configured (otherwise everything is allowed).
    pub fn enabled(&self) -> bool {
        self.admin.is_some() || !self.invoke.is_empty()
    }

    /// Checks the `Authorization` header value against what `need` requires.
    pub fn check(&self, authorization: Option<&[u8]>, need: Access) -> Result<(), Denied> {
        if need == Access::Public || !self.enabled() {
            return Ok(());
        }
        let presented = authorization
            .and_then(|h| {
                let h = std::str::from_utf8(h).ok()?.trim();
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Unauthenticated)?;
        let d = digest(presented.as_bytes());
        let is_admin = self.admin.as_ref().is_some_and(|a| same(a, &d));
        let is_invoke = self.invoke.iter().fold(false, |acc, t| acc | same(t, &d));
        match (need, is_admin, is_invoke) {
            (_, true, _) => Ok(()),
            (Access::Invoke, _, true) => Ok(()),
            (Access::Admin, _, true) => Err(Denied::Forbidden),
            _ => Err(Denied::Unauthenticated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&AuthConfig {
            admin: Some("admin-token-0123456789".into()),
            invoke: vec!["invoke-token-0123456789".into()],
        })
    }

    #[test]
    fn roles() {
        let t = tokens();
        let admin = Some(&b"Bearer admin-token-0123456789"[..]);
        let invoke = Some(&b"bearer invoke-token-0123456789"[..]);
        assert_eq!(t.check(admin, Access::Admin), Ok(()));
        assert_eq!(t.check(admin, Access::Invoke), Ok(()));
        assert_eq!(t.check(invoke, Access::Invoke), Ok(()));
        assert_eq!(t.check(invoke, Access::Admin), Err(Denied::Forbidden));
        assert_eq!(t.check(None, Access::Invoke), Err(Denied::Unauthenticated));
        assert_eq!(t.check(Some(b"Bearer nope"), Access::Invoke), Err(Denied::Unauthenticated));
        assert_eq!(t.check(Some(b"Basic admin-token-0123456789"), Access::Admin), Err(Denied::Unauthenticated));
        assert_eq!(t.check(Some(b"Bearer "), Access::Admin), Err(Denied::Unauthenticated));
        assert_eq!(t.check(None, Access::Public), Ok(()));
        assert_eq!(Tokens::default().check(None, Access::Admin), Ok(()));
    }
}
