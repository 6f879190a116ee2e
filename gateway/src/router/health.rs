//! Backend health: passive outlier detection, the half-open probe, and active checks.
//!
//! Passive, after Envoy's outlier detection: a backend is quarantined for
//! `proxy.quarantineDuration` only after `proxy.consecutiveFailures` failures in a row
//! (connection errors and 5xx; a success resets the count). A response-header timeout is not
//! counted: on a long generation it is no proof that the backend is dead. When the quarantine
//! expires exactly one request is admitted as a probe while every other request keeps avoiding
//! the backend; the probe's result restores the backend or quarantines it again. (The original
//! quarantined on the first failure and let every request probe at once.)
//!
//! Active, when a backend declares `healthCheck`: the active checker GETs its path every
//! `intervalSeconds`. A failed check takes the backend out of service until a check passes; a
//! passing check restores it at once, whatever quarantined it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Milliseconds since the first call, never 0 (0 means "not quarantined").
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// `quarantined_until` of a backend whose active check failed: out until a check passes.
pub(crate) const UNTIL_CHECK_PASSES: u64 = u64::MAX;

/// Health of one backend; shared by every snapshot that keeps the backend's name.
#[derive(Debug, Default)]
pub struct BackendHealth {
    /// `now_ms()` until which the backend is avoided; 0 when healthy.
    pub(crate) quarantined_until: AtomicU64,
    /// A half-open probe is in flight.
    probing: AtomicBool,
    /// Failures in a row since the last success.
    consecutive_failures: AtomicU32,
    /// `now_ms()` when the next active check is due (0: now).
    pub(crate) next_check: AtomicU64,
    /// An active check is in flight.
    pub(crate) checking: AtomicBool,
}

/// Leave to send one request to a backend. Report its result with [`Permit::success`],
/// [`Permit::failure`] or [`Permit::timeout`]; dropping it unreported (a cancelled request)
/// frees the probe slot.
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

    /// Admits a request to a quarantined backend: every candidate of a route is out, and
    /// trying one beats answering untried (Envoy's panic mode).
    pub fn admit_in_panic(&self) -> Permit<'_> {
        Permit {
            health: self,
            probe: false,
        }
    }

    /// Whether requests are currently sent to this backend (for metrics and status).
    pub fn in_service(&self, now: u64) -> bool {
        let until = self.quarantined_until.load(Ordering::Acquire);
        until == 0 || (now >= until && !self.probing.load(Ordering::Acquire))
    }

    /// An active check passed: back in service, failures forgotten.
    pub(crate) fn check_passed(&self) {
        self.consecutive_failures.store(0, Ordering::Release);
        self.quarantined_until.store(0, Ordering::Release);
    }

    /// An active check failed: out of service until one passes.
    pub(crate) fn check_failed(&self) {
        self.quarantined_until
            .store(UNTIL_CHECK_PASSES, Ordering::Release);
    }
}

impl Permit<'_> {
    /// Whether this permit is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The request succeeded: the failure count restarts, a probe restores the backend.
    pub fn success(self) {
        self.health.consecutive_failures.store(0, Ordering::Release);
        if self.probe {
            self.health.quarantined_until.store(0, Ordering::Release);
        }
    }

    /// The request failed (connection error or 5xx). The `threshold`-th failure in a row, or
    /// a failed probe, quarantines the backend for `quarantine` (0 disables quarantine);
    /// returns whether it did.
    pub fn failure(self, threshold: u32, quarantine: Duration, now: u64) -> bool {
        let failures = self
            .health
            .consecutive_failures
            .fetch_add(1, Ordering::AcqRel)
            + 1;
        if quarantine.is_zero() || !(self.probe || failures >= threshold) {
            return false;
        }
        let until = now + quarantine.as_millis().max(1) as u64;
        self.health.consecutive_failures.store(0, Ordering::Release);
        // An actively checked backend that is out stays out until its check passes.
        self.health
            .quarantined_until
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current != UNTIL_CHECK_PASSES).then_some(until)
            })
            .is_ok()
    }

    /// No response headers in time: neither a success nor counted as a failure.
    pub fn timeout(self) {}
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
        h.try_admit(1).unwrap().failure(1, Q, 1);
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
        h.try_admit(1).unwrap().failure(1, Q, 1);
        h.try_admit(200).unwrap().failure(5, Q, 200);
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
        h.try_admit(2).unwrap().failure(1, Q, 2);
        early.success();
        assert!(h.try_admit(3).is_none());
    }

    #[test]
    fn only_consecutive_failures_quarantine_and_timeouts_do_not_count() {
        let h = BackendHealth::default();
        for _ in 0..4 {
            assert!(!h.try_admit(1).unwrap().failure(5, Q, 1));
        }
        h.try_admit(1).unwrap().timeout();
        h.try_admit(1).unwrap().success();
        for _ in 0..4 {
            assert!(
                !h.try_admit(2).unwrap().failure(5, Q, 2),
                "the count restarted"
            );
        }
        h.try_admit(2).unwrap().timeout();
        assert!(h.try_admit(2).is_some(), "a timeout is not a failure");
        assert!(
            h.try_admit(3).unwrap().failure(5, Q, 3),
            "the fifth in a row"
        );
        assert!(h.try_admit(4).is_none());
    }

    #[test]
    fn active_checks_take_out_and_restore() {
        let h = BackendHealth::default();
        h.check_failed();
        assert!(
            h.try_admit(u64::MAX - 1).is_none(),
            "out until a check passes"
        );
        assert!(!h.in_service(1));
        let p = h.admit_in_panic();
        assert!(!p.failure(1, Q, 5), "a passive failure does not shorten it");
        assert!(h.try_admit(1000).is_none());
        h.check_passed();
        assert!(h.try_admit(1001).is_some_and(|p| !p.is_probe()));
    }
}
