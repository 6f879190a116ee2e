//! `llmkube-gateway policy new NAME`: a policy crate of its own, outside this repository, that
//! tests, builds and pins as written: `Cargo.toml` (a release profile for small, reproducible
//! modules), a post-phase example policy with typed metadata, fixture cases, a native test, and
//! `pin.sh` (build, `policy-test`, sha256).

use std::path::{Path, PathBuf};

/// Where the new crate takes `llmkube-policy-sdk` from.
#[derive(Debug, Clone)]
pub enum SdkSource {
    /// A checkout of this repository (`<checkout>/policy-sdk`).
    Path(PathBuf),
    /// A registry (a site's crates mirror), at this version.
    Version(String),
}

const FILES: [(&str, &str); 6] = [
    ("Cargo.toml", include_str!("scaffold/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("scaffold/lib.rs.tmpl")),
    (
        "fixtures/cases.json",
        include_str!("scaffold/cases.json.tmpl"),
    ),
    (
        "tests/fixtures.rs",
        include_str!("scaffold/fixtures.rs.tmpl"),
    ),
    ("pin.sh", include_str!("scaffold/pin.sh.tmpl")),
    ("README.md", include_str!("scaffold/README.md.tmpl")),
];

/// Writes the crate `name` into `dir` (which must not exist or be empty); returns the files.
pub fn write(name: &str, dir: &Path, sdk: &SdkSource) -> Result<Vec<PathBuf>, String> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(format!(
            "{name:?} is not a policy name: 1..64 lowercase letters, digits and dashes, starting with a letter"
        ));
    }
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let dependency = match sdk {
        SdkSource::Path(p) => format!(
            "llmkube-policy-sdk = {{ path = {:?} }}",
            p.display().to_string()
        ),
        SdkSource::Version(v) => format!(
            "# From your crates mirror; or: llmkube-policy-sdk = {{ path = \"<llmkube checkout>/policy-sdk\" }}\nllmkube-policy-sdk = \"{v}\""
        ),
    };
    let ident = name.replace('-', "_");
    let mut written = Vec::new();
    for (file, template) in FILES {
        let text = template
            .replace("{name}", name)
            .replace("{crate_ident}", &ident)
            .replace(
                "{sdk_dependency}",
                &dependency.replace('{', "{{").replace('}', "}}"),
            )
            .replace("{{", "{")
            .replace("}}", "}");
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let pin = dir.join("pin.sh");
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", pin.display()))?;
    }
    Ok(written)
}
