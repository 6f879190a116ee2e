//! The router being served: an immutable snapshot of a ModelRouter with its backends, their
//! health, and how a new version is read, prepared and swapped in.

pub(crate) mod active_checks;
pub(crate) mod backend;
pub(crate) mod bundle;
pub(crate) mod health;
#[cfg(feature = "kubernetes")]
pub(crate) mod kube_source;
pub(crate) mod reload;
pub(crate) mod snapshot;
