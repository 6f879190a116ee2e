//! Passive backend health: quarantine after a failure, then a single half-open probe.
//!
//! A failed backend is avoided for `proxy.quarantineDuration`. When that expires exactly one
//! request is admitted as a probe while every other request keeps avoiding the backend; the
//! probe's result either restores the backend or quarantines it again. (The original let every
//! request probe at once.)

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Milliseconds since the first call, never 0 (0 means "not quarantined").
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Health of one backend; shared by every snapshot that keeps the backend's name.
#[derive(Debug, Default)]
pub struct BackendHealth {
    /// `now_ms()` until which the backend is avoided; 0 when healthy.
    quarantined_until: AtomicU64,
    /// A half-open probe is in flight.
    probing: AtomicBool,
}

/// Leave to send one request to a backend. Report its result with [`Permit::success`] or
/// [`Permit::failure`]; dropping it unreported (a cancelled request) frees the probe slot.
#[derive(Debug)]
pub struct Permit<'a> {
    health: &'a BackendHealth,
    probe: bool,
}

impl BackendHealth {
    /// Admits a request now, or `None` while the backend is quarantined (or being probed).
    pub fn try_admit(&self, now: u64) -> Option<Permit<'_>> {
        let until = self.quarantined_until.load(Ordering::Acquire);
        if until == 0 {
            return Some(Permit {
                health: self,
                probe: false,
            });
        }
        if now < until {
            return None;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Permit {
                health: self,
                probe: true,
            })
    }

    /// Whether requests are currently sent to this backend (for metrics and status).
    pub fn in_service(&self, now: u64) -> bool {
        let until = self.quarantined_until.load(Ordering::Acquire);
        until == 0 || (now >= until && !self.probing.load(Ordering::Acquire))
    }
}

impl Permit<'_> {
    /// Whether this permit is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The request succeeded: a probe restores the backend.
    pub fn success(self) {
        if self.probe {
            self.health.quarantined_until.store(0, Ordering::Release);
        }
    }

    /// The request failed: quarantine the backend for `quarantine` (0 disables quarantine).
    pub fn failure(self, quarantine: Duration, now: u64) {
        if !quarantine.is_zero() {
            let until = now + quarantine.as_millis().max(1) as u64;
            self.health
                .quarantined_until
                .store(until, Ordering::Release);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.health.probing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Duration = Duration::from_millis(100);

    #[test]
    fn quarantine_then_exactly_one_probe() {
        let h = BackendHealth::default();
        h.try_admit(1).unwrap().failure(Q, 1);
        assert!(h.try_admit(50).is_none(), "quarantined");
        let probe = h.try_admit(101).expect("expired: one probe");
        assert!(probe.is_probe());
        assert!(
            h.try_admit(102).is_none(),
            "others keep avoiding it during the probe"
        );
        probe.success();
        assert!(h.try_admit(103).is_some_and(|p| !p.is_probe()), "restored");
    }

    #[test]
    fn failed_probe_requarantines_and_cancelled_probe_frees_the_slot() {
        let h = BackendHealth::default();
        h.try_admit(1).unwrap().failure(Q, 1);
        h.try_admit(200).unwrap().failure(Q, 200);
        assert!(
            h.try_admit(250).is_none(),
            "probe failed: quarantined again"
        );
        drop(h.try_admit(301).unwrap());
        assert!(
            h.try_admit(302).is_some_and(|p| p.is_probe()),
            "a dropped probe lets the next request probe"
        );
    }

    #[test]
    fn late_success_of_an_ordinary_request_does_not_lift_quarantine() {
        let h = BackendHealth::default();
        let early = h.try_admit(1).unwrap();
        h.try_admit(2).unwrap().failure(Q, 2);
        early.success();
        assert!(h.try_admit(3).is_none());
    }
}
