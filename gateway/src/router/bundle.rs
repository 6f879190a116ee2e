//! A router and the files it names, as one unit: `router.yaml` plus policy modules and the
//! precompiled rules. Read from a directory (standalone mode) or from the gateway's ConfigMap
//! (Kubernetes mode), so that a reload always sees one consistent version of all of them.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use llmkube_router::bundle::{RULES_KEY, RULES_SHA_KEY};

/// One version of a router's configuration.
#[derive(Debug, Clone)]
pub struct RouterBundle {
    /// Where it came from, for messages (a path, or `configmap <ns>/<name>`).
    pub origin: String,
    /// The ModelRouter YAML.
    pub text: String,
    /// Standalone mode: relative module paths resolve here.
    pub dir: Option<PathBuf>,
    /// Kubernetes mode: the ConfigMap's other keys (policy modules, compiled rules).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl RouterBundle {
    /// Reads a router file; modules it names are read from its directory when needed.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok(RouterBundle {
            origin: path.display().to_string(),
            text,
            dir: Some(dir),
            files: BTreeMap::new(),
        })
    }

    /// A policy module named by `module.file`: from the bundle's files, else from its directory.
    pub fn module(&self, name: &str) -> Result<Vec<u8>, String> {
        if let Some(bytes) = self.files.get(name) {
            return Ok(bytes.clone());
        }
        match &self.dir {
            Some(dir) => {
                let full = dir.join(name);
                std::fs::read(&full)
                    .map_err(|e| format!("cannot read module {}: {e}", full.display()))
            }
            None => Err(format!("{} has no module {name:?}", self.origin)),
        }
    }

    /// The rules the controller compiled, with the digest it published, if the bundle has them.
    pub fn precompiled_rules(&self) -> Option<(&[u8], &str)> {
        let wasm = self.files.get(RULES_KEY)?;
        let sha = std::str::from_utf8(self.files.get(RULES_SHA_KEY)?).ok()?;
        Some((wasm, sha.trim()))
    }

    /// A fingerprint of the whole bundle: unchanged content is not reloaded.
    pub fn content_hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.text.hash(&mut h);
        self.files.hash(&mut h);
        h.finish()
    }
}
