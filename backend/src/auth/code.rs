//! One-time sign-in codes: a code stands for a user's token until it is exchanged once at
//! `POST /api/v1/session` (see [`super::session`]), which sets the session cookie as a token
//! sign-in would. Only `fusebox demo` issues one, for the link it prints; `fusebox serve` never
//! does, so a server has no code, and no credential, that nobody created by hand.
//!
//! Codes live in memory only, kept as the SHA-256 hashes of their text: a stopped server
//! forgets them, and nothing that reads memory or logs learns a code it could still use. A
//! code not exchanged within [`CODE_LIFETIME_MS`] of its issue (by the server's clock) is
//! refused and forgotten: a link left in a terminal's scrollback does not open the dashboard
//! as an admin a day later.

use std::collections::HashMap;
use std::sync::Mutex;

/// How long a code may wait to be exchanged: an hour.
pub const CODE_LIFETIME_MS: i64 = 3_600_000;

/// The codes not exchanged yet, by hash, with the token each stands for and when it expires.
#[derive(Default)]
pub struct SignInCodes {
    tokens_by_code_hash: Mutex<HashMap<String, (String, i64)>>,
}

/// What every code starts with, to tell it from a token or a key at a glance.
pub const CODE_PREFIX: &str = "fbc_";

impl SignInCodes {
    /// A new code, issued at `now_ms`, that stands for `token` until it is exchanged or
    /// [`CODE_LIFETIME_MS`] has passed.
    pub fn issue(&self, token: &str, now_ms: i64) -> anyhow::Result<String> {
        let code = super::new_secret(CODE_PREFIX)?;
        self.tokens_by_code_hash
            .lock()
            .expect("sign-in codes lock poisoned")
            .insert(
                super::hash_secret(&code),
                (token.to_string(), now_ms.saturating_add(CODE_LIFETIME_MS)),
            );
        Ok(code)
    }

    /// The token `code` stands for, once, if it has not expired by `now_ms`: the code is
    /// forgotten as it is exchanged, and so are the codes that expired.
    pub fn redeem(&self, code: &str, now_ms: i64) -> Option<String> {
        let mut codes = self
            .tokens_by_code_hash
            .lock()
            .expect("sign-in codes lock poisoned");
        codes.retain(|_, (_, expires_ms)| now_ms < *expires_ms);
        codes
            .remove(&super::hash_secret(code))
            .map(|(token, _)| token)
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
        let code = codes.issue("fbu_token", 1_000).unwrap();
        assert!(code.starts_with(CODE_PREFIX));
        assert_eq!(codes.len(), 1);
        assert_eq!(codes.redeem("fbc_other", 1_000), None);
        assert_eq!(codes.redeem(&code, 1_000).as_deref(), Some("fbu_token"));
        assert_eq!(codes.redeem(&code, 1_000), None);
        assert!(codes.is_empty());
    }

    #[test]
    fn a_code_expires_an_hour_after_its_issue() {
        let codes = SignInCodes::default();
        let late = codes.issue("fbu_late", 0).unwrap();
        let on_time = codes.issue("fbu_on_time", 0).unwrap();
        assert_eq!(
            codes.redeem(&on_time, CODE_LIFETIME_MS - 1).as_deref(),
            Some("fbu_on_time")
        );
        assert_eq!(codes.redeem(&late, CODE_LIFETIME_MS), None);
        assert!(codes.is_empty(), "an expired code is forgotten");
    }
}
