//! Loading the router file, and swapping in a new version whenever it changes.
//!
//! The file's directory is watched (which also catches a Kubernetes ConfigMap volume's atomic
//! symlink swap); SIGHUP makes it re-read the file. A new version is validated and fully prepared before
//! the atomic swap; an invalid one is logged with every problem and the old router keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use llmkube_router::manifest::{LoadError, load_router};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::{ReloadLabels, ReloadResult};
use crate::router::bundle::RouterBundle;
use crate::router::snapshot::{BuildError, RouterSnapshot, SnapshotBuilder};
use crate::state::AppState;

/// Why the router file could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a valid ModelRouter.
    #[error("{path}: {source}")]
    Load {
        /// The file.
        path: String,
        /// What is wrong.
        source: LoadError,
    },
    /// The router could not be fetched from its source (e.g. the Kubernetes API).
    #[error("{origin}: {message}")]
    Source {
        /// Where from.
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// Valid, but could not be prepared.
    #[error("{path}: {source}")]
    Build {
        /// The file.
        path: String,
        /// What is wrong.
        source: BuildError,
    },
}

/// Reads the router file at `path` as a bundle.
pub fn read_bundle(path: &Path) -> Result<RouterBundle, ReloadError> {
    RouterBundle::read(path).map_err(|source| ReloadError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Validates and prepares the router in `bundle`.
pub fn build_snapshot(
    bundle: &RouterBundle,
    name: Option<&str>,
    builder: &SnapshotBuilder,
    previous: Option<&RouterSnapshot>,
) -> Result<RouterSnapshot, ReloadError> {
    let manifest = load_router(&bundle.text, name).map_err(|source| ReloadError::Load {
        path: bundle.origin.clone(),
        source,
    })?;
    let snapshot = builder
        .build(&manifest, bundle, previous)
        .map_err(|source| ReloadError::Build {
            path: bundle.origin.clone(),
            source,
        })?;
    builder.engine.retain_modules(&snapshot.policies.digests());
    Ok(snapshot)
}

/// Swaps in `bundle` unless its content is the one being served (`force`: rebuild anyway, so
/// that files outside the bundle such as API keys are read again); counts the outcome.
/// Returns whether it swapped. On error the previous router keeps serving.
pub fn swap_in(
    state: &AppState,
    bundle: &RouterBundle,
    name: Option<&str>,
    force: bool,
) -> Result<bool, ReloadError> {
    let hash = bundle.content_hash();
    let mut served = state.served.lock().unwrap_or_else(|e| e.into_inner());
    if hash == served.0 && !force {
        return Ok(false);
    }
    let current = state.router.load_full();
    let label = |result| ReloadLabels { result };
    match build_snapshot(bundle, name, &state.builder, Some(&current)) {
        Ok(snapshot) => {
            tracing::info!(
                source = %bundle.origin,
                router = %snapshot.name,
                changes = %changes(&current, &snapshot),
                "router reloaded"
            );
            state.router.store(Arc::new(snapshot));
            *served = (hash, Arc::new(bundle.clone()));
            state
                .metrics
                .reloads
                .get_or_create(&label(ReloadResult::Ok))
                .inc();
            Ok(true)
        }
        Err(e) => {
            state
                .metrics
                .reloads
                .get_or_create(&label(ReloadResult::Rejected))
                .inc();
            Err(e)
        }
    }
}

/// What differs between two versions of a router, for the reload log: the compiled rules'
/// digest, and each policy's module and configuration digests (`=` when unchanged).
fn changes(old: &RouterSnapshot, new: &RouterSnapshot) -> String {
    let short = |d: &str| d.get(..12).unwrap_or(d).to_owned();
    let step = |a: &str, b: &str| {
        if a == b {
            format!("= {}", short(b))
        } else {
            format!("{} -> {}", short(a), short(b))
        }
    };
    let mut out = vec![format!(
        "rules {}",
        step(&old.policies.rules.digest, &new.policies.rules.digest)
    )];
    for p in &new.policies.policies {
        let m = &p.module;
        match old.policies.policies.iter().find(|o| o.label == p.label) {
            Some(o) => out.push(format!(
                "policy {}: module {}, config {}",
                p.label,
                step(&o.module.digest, &m.digest),
                step(&o.module.config_digest, &m.config_digest)
            )),
            None => out.push(format!(
                "policy {} added: module {}, config {}",
                p.label,
                short(&m.digest),
                short(&m.config_digest)
            )),
        }
    }
    for o in &old.policies.policies {
        if !new.policies.policies.iter().any(|p| p.label == o.label) {
            out.push(format!("policy {} removed", o.label));
        }
    }
    out.join("; ")
}

/// Re-reads `path` into `state` unless its content is unchanged. Returns whether it swapped.
pub fn reload(
    state: &AppState,
    path: &Path,
    name: Option<&str>,
    force: bool,
) -> Result<bool, ReloadError> {
    let bundle = read_bundle(path)?;
    swap_in(state, &bundle, name, force)
}

/// Starts watching `path` (and SIGHUP) and reloads on change until the task is aborted.
///
/// The watch is registered before this returns, so no change made afterwards is missed.
pub fn spawn_watcher(state: Arc<AppState>, path: PathBuf, name: Option<String>) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let notify_tx = tx.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if is_change(&event) {
            let _ = notify_tx.try_send(());
        }
    })
    .and_then(|mut w| {
        use notify::Watcher;
        w.watch(&dir, notify::RecursiveMode::NonRecursive)
            .map(|()| w)
    });
    // Without a working watcher (e.g. inotify limits), poll instead.
    let poll_every = match &watcher {
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(
                "cannot watch {}: {e}; polling every 2s instead",
                dir.display()
            );
            Some(Duration::from_secs(2))
        }
    };
    // SIGHUP rebuilds even an unchanged router, re-reading the API keys.
    let forced = Arc::new(AtomicBool::new(false));
    spawn_sighup(tx, Arc::clone(&forced));
    tokio::spawn(async move {
        let _watcher = watcher;
        // The content last refused: it is reported once, not again on every later event.
        let mut refused: Option<u64> = None;
        loop {
            match poll_every {
                Some(every) => {
                    let _ = tokio::time::timeout(every, rx.recv()).await;
                }
                None => {
                    if rx.recv().await.is_none() {
                        return;
                    }
                }
            }
            // Let a burst of writes settle, then reload once.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while rx.try_recv().is_ok() {}
            let force = forced.swap(false, Ordering::Relaxed);
            let bundle = match read_bundle(&path) {
                Ok(bundle) => bundle,
                Err(e) => {
                    tracing::error!(
                        "router reload refused, the previous router keeps serving: {e}"
                    );
                    continue;
                }
            };
            let hash = bundle.content_hash();
            if refused == Some(hash) && !force {
                continue;
            }
            match swap_in(&state, &bundle, name.as_deref(), force) {
                Ok(_) => refused = None,
                Err(e) => {
                    refused = Some(hash);
                    tracing::error!("router reload refused, the previous router keeps serving: {e}")
                }
            }
        }
    })
}

/// Whether a filesystem event can mean new content: files created, written, renamed or
/// removed (a Kubernetes volume update swaps a symlink). Opening, reading and closing do not:
/// the gateway's own reads of the files it watches must not wake it.
fn is_change(event: &notify::Result<notify::Event>) -> bool {
    use notify::EventKind;
    use notify::event::ModifyKind;
    match event {
        Ok(e) => matches!(
            e.kind,
            EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
        ),
        // A lost or failed event may hide a change: look.
        Err(_) => true,
    }
}

/// Rebuilds the router being served from the same bundle, re-reading what lies outside it
/// (API keys, a JWKS or Redis Secret, provider credentials).
pub fn rebuild(state: &AppState, name: Option<&str>) -> Result<bool, ReloadError> {
    let bundle = {
        let served = state.served.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&served.1)
    };
    swap_in(state, &bundle, name, true)
}

/// Watches the credentials directory (mounted Secrets, which the kubelet updates in place
/// by swapping a symlink) and rebuilds the router when anything in it changes: rotated API
/// keys, provider keys or a JWKS take effect without a restart or a signal (SIGHUP still
/// works when the directory cannot be watched).
pub fn spawn_credentials_watcher(
    state: Arc<AppState>,
    dir: PathBuf,
    name: Option<String>,
) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if is_change(&event) {
            let _ = tx.try_send(());
        }
    })
    .and_then(|mut w| {
        use notify::Watcher;
        w.watch(&dir, notify::RecursiveMode::Recursive).map(|()| w)
    });
    if let Err(e) = &watcher {
        tracing::warn!(
            "cannot watch the credentials directory {}: {e}; rotated Secrets take effect on SIGHUP",
            dir.display()
        );
    }
    tokio::spawn(async move {
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            // A Secret update is several filesystem events: let them settle, then rebuild once.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while rx.try_recv().is_ok() {}
            match rebuild(&state, name.as_deref()) {
                Ok(_) => {
                    tracing::info!(dir = %dir.display(), "credentials changed; router rebuilt")
                }
                Err(e) => tracing::error!(
                    "credentials changed but the router could not be rebuilt, the previous one keeps serving: {e}"
                ),
            }
        }
    })
}

fn spawn_sighup(tx: mpsc::Sender<()>, forced: Arc<AtomicBool>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            forced.store(true, Ordering::Relaxed);
            let _ = tx.try_send(());
        }
    });
}
