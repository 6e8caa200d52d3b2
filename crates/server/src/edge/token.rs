//! A bearer token: a secret that never reaches a log, a `Debug` print or a timing side channel.

use std::{fmt, path::Path, str::FromStr};

use subtle::ConstantTimeEq;

/// Shorter tokens are refused: 16 characters of `openssl rand -hex 32` already carry 64 bits.
pub const MIN_LEN: usize = 16;

/// A token as configured. `Debug` prints `Token(<redacted>)`, so a configuration logged or
/// printed in a panic never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Reads a token from a file (a Kubernetes Secret mounted as a volume), trimming the
    /// trailing newline editors and `echo` add.
    pub fn from_file(path: &Path) -> anyhow::Result<Token> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read token file {}: {e}", path.display()))?;
        text.trim().parse().map_err(|e| anyhow::anyhow!("token file {}: {e}", path.display()))
    }

    /// Compares in constant time: how long the comparison takes says nothing about how many
    /// leading characters a guess got right. (A length mismatch returns at once; the length
    /// is not the secret.)
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// The token itself, for the one place that must write it (the dashboard's cookie).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Token {
    type Err = String;

    /// Only URL- and cookie-safe characters (`A-Z a-z 0-9 - . _ ~`), so the same token works in
    /// an `Authorization` header, a `?token=` query and a cookie without any escaping.
    fn from_str(s: &str) -> Result<Token, String> {
        if s.len() < MIN_LEN {
            return Err(format!("a token needs at least {MIN_LEN} characters (e.g. `openssl rand -hex 32`)"));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))) {
            return Err(format!(
                "a token may hold only A-Z, a-z, 0-9, '-', '.', '_' and '~' (found {c:?}; `openssl rand -hex 32` makes one)"
            ));
        }
        Ok(Token(s.to_owned()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_checked_and_never_printed() {
        let t: Token = "0123456789abcdef-secret".parse().unwrap();
        assert!(t.matches("0123456789abcdef-secret"));
        assert!(!t.matches("0123456789abcdef-secreT"));
        assert!(!t.matches("0123456789abcdef"));
        assert!(!format!("{t:?}").contains("secret"));
        assert!("short".parse::<Token>().is_err());
        assert!("0123456789abcdef;x".parse::<Token>().is_err());
    }
}
