//! One-time sign-in codes: a code stands for a user's token until it is exchanged once at
//! `POST /api/v1/session` (see [`super::session`]), which sets the session cookie as a token
//! sign-in would. Only `fusebox demo` issues one, for the link it prints; `fusebox serve` never
//! does, so a server has no code, and no credential, that nobody created by hand.
//!
//! Codes live in memory only, kept as the SHA-256 hashes of their text: a stopped server
//! forgets them, and nothing that reads memory or logs learns a code it could still use.

use std::collections::HashMap;
use std::sync::Mutex;

/// The codes not exchanged yet, by hash, with the token each stands for.
#[derive(Default)]
pub struct SignInCodes {
    tokens_by_code_hash: Mutex<HashMap<String, String>>,
}

/// What every code starts with, to tell it from a token or a key at a glance.
pub const CODE_PREFIX: &str = "fbc_";

impl SignInCodes {
    /// A new code that stands for `token` until it is exchanged.
    pub fn issue(&self, token: &str) -> anyhow::Result<String> {
        let code = super::new_secret(CODE_PREFIX)?;
        self.tokens_by_code_hash
            .lock()
            .expect("sign-in codes lock poisoned")
            .insert(super::hash_secret(&code), token.to_string());
        Ok(code)
    }

    /// The token `code` stands for, once: the code is forgotten as it is exchanged.
    pub fn redeem(&self, code: &str) -> Option<String> {
        self.tokens_by_code_hash
            .lock()
            .expect("sign-in codes lock poisoned")
            .remove(&super::hash_secret(code))
    }

    /// How many codes wait to be exchanged.
    pub fn len(&self) -> usize {
        self.tokens_by_code_hash
            .lock()
            .expect("sign-in codes lock poisoned")
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_exchanged_once() {
        let codes = SignInCodes::default();
        let code = codes.issue("fbu_token").unwrap();
        assert!(code.starts_with(CODE_PREFIX));
        assert_eq!(codes.len(), 1);
        assert_eq!(codes.redeem("fbc_other"), None);
        assert_eq!(codes.redeem(&code).as_deref(), Some("fbu_token"));
        assert_eq!(codes.redeem(&code), None);
        assert!(codes.is_empty());
    }
}
