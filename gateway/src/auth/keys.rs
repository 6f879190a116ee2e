//! API keys: the SHA-256 digests a Secret holds, each with its principal and team, and the
//! lookup of the key a request presents.
//!
//! The file (`keys.yaml` by default) is a YAML list:
//!
//! ```yaml
//! - principal: alice@example.org   # goes on the audit line
//!   team: research                 # optional
//!   sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//! ```
//!
//! `printf %s "$KEY" | sha256sum` gives a key's digest; the key itself is never stored. A
//! presented key is hashed, its digest's first 8 bytes pick the candidates, and the full 32
//! bytes are compared in constant time: what the timing can reveal is only whether a 64-bit
//! prefix of the digest of the attacker's own input matches, which does not lead to a key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use llmkube_router::validate::valid_name;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Most keys one file may hold.
pub const MAX_KEYS: usize = 100_000;
/// Largest key file read, in bytes.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Longest key accepted from a client, in bytes (longer ones are wrong without hashing).
const MAX_KEY_LEN: usize = 4096;

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// Goes on the audit line and into the policy view.
    pub principal: Arc<str>,
    /// The key's team, if it has one.
    pub team: Option<Arc<str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    principal: String,
    #[serde(default)]
    team: Option<String>,
    sha256: String,
}

/// The keys of one file, by digest prefix.
#[derive(Debug, Default)]
pub struct KeyTable {
    by_prefix: HashMap<u64, Vec<([u8; 32], KeyOwner)>>,
}

impl KeyTable {
    /// Reads and checks the key file at `path`; every problem is reported with its entry.
    pub fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!(
                "{shown} is {} bytes; at most {MAX_FILE_BYTES} are read",
                meta.len()
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("{shown}: {e}"))
    }

    /// Parses the text of a key file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let entries: Vec<Entry> = if text.trim().is_empty() {
            Vec::new()
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| format!("not a list of {{principal, team, sha256}}: {e}"))?
        };
        if entries.len() > MAX_KEYS {
            return Err(format!(
                "{} keys; at most {MAX_KEYS} are allowed",
                entries.len()
            ));
        }
        let mut table = KeyTable::default();
        let mut problems = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            let Some(digest) = parse_digest(&e.sha256) else {
                problems.push(format!(
                    "entry {i} ({:?}): sha256 must be 64 lowercase hex digits",
                    e.principal
                ));
                continue;
            };
            if !valid_name(&e.principal) || e.team.as_deref().is_some_and(|t| !valid_name(t)) {
                problems.push(format!("entry {i}: principal and team must be printable names without spaces, commas, semicolons, quotes or backslashes"));
                continue;
            }
            let bucket = table.by_prefix.entry(prefix(&digest)).or_default();
            if bucket.iter().any(|(d, _)| *d == digest) {
                problems.push(format!(
                    "entry {i} ({:?}): the same key is listed twice",
                    e.principal
                ));
                continue;
            }
            bucket.push((
                digest,
                KeyOwner {
                    principal: e.principal.into(),
                    team: e.team.map(Into::into),
                },
            ));
        }
        if problems.is_empty() {
            Ok(table)
        } else {
            Err(problems.join("; "))
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_prefix.values().map(Vec::len).sum()
    }

    /// The owner of `key`, if it is one of the table's.
    pub fn find(&self, key: &[u8]) -> Option<&KeyOwner> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(key).into();
        let candidates = self.by_prefix.get(&prefix(&digest))?;
        let mut found = None;
        // Every candidate is compared, so the time does not tell which one matched.
        for (d, owner) in candidates {
            if bool::from(d.ct_eq(&digest)) {
                found = Some(owner);
            }
        }
        found
    }
}

fn prefix(digest: &[u8; 32]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::KeyTable;

    // sha256("foo") and sha256("bar").
    const FOO: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    const BAR: &str = "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9";

    #[test]
    fn a_listed_key_finds_its_owner_and_nothing_else_does() {
        let text = format!(
            "- {{principal: alice, team: research, sha256: {FOO}}}\n- {{principal: bot, sha256: {BAR}}}\n"
        );
        let t = KeyTable::parse(&text).unwrap();
        assert_eq!(t.len(), 2);
        let alice = t.find(b"foo").unwrap();
        assert_eq!(
            (&*alice.principal, alice.team.as_deref()),
            ("alice", Some("research"))
        );
        assert_eq!(t.find(b"bar").unwrap().team, None);
        assert!(
            t.find(b"fo").is_none() && t.find(b"").is_none() && t.find(FOO.as_bytes()).is_none()
        );
    }

    #[test]
    fn bad_entries_are_refused_with_their_place() {
        let upper = FOO.to_uppercase();
        let e = KeyTable::parse(&format!("- {{principal: a, sha256: {upper}}}")).unwrap_err();
        assert!(e.contains("entry 0"), "{e}");
        let twice = format!("- {{principal: a, sha256: {FOO}}}\n- {{principal: b, sha256: {FOO}}}");
        assert!(KeyTable::parse(&twice).unwrap_err().contains("twice"));
        let e = KeyTable::parse("- {principal: a, sha256: x, key: plain}").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
