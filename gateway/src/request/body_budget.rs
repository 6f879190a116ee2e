//! The memory budget shared by every request body held in memory.
//!
//! Bodies are buffered whole (up to the body limit) so they can be validated and scanned
//! before anything is sent. Without a shared bound, a few hundred clients that each send most
//! of a large body and then pause would get the pod OOM-killed, and every stream in flight
//! with it. Each request reserves what it will hold (its declared length up front, or frame by
//! frame) before reading; when the budget is full it waits a bounded time for others to
//! finish, then is refused with 503 and `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The budget.
#[derive(Debug)]
pub struct BodyBudget {
    limit: u64,
    used: AtomicU64,
    /// How long a request may wait for room.
    wait: Duration,
    freed: Notify,
    gauge: Gauge,
}

/// Bytes held by one request; returned to the budget on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: u64,
}

/// The budget stayed full for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetFull {
    /// Seconds a client should wait before trying again.
    pub retry_after_secs: u64,
}

impl BodyBudget {
    /// A budget of `limit` bytes; `gauge` shows the bytes in use.
    pub fn new(limit: u64, wait: Duration, gauge: Gauge) -> Arc<Self> {
        Arc::new(BodyBudget {
            limit,
            used: AtomicU64::new(0),
            wait,
            freed: Notify::new(),
            gauge,
        })
    }

    /// An empty reservation to grow.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    fn try_take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: u64) {
        if n > 0 {
            let before = self.used.fetch_sub(n, Ordering::AcqRel);
            self.gauge
                .set(i64::try_from(before - n).unwrap_or(i64::MAX));
            self.freed.notify_waiters();
        }
    }
}

impl Reservation {
    /// Adds `n` bytes, waiting (up to the budget's wait) for room.
    pub async fn grow(&mut self, n: u64) -> Result<(), BudgetFull> {
        let budget = Arc::clone(&self.budget);
        let deadline = Instant::now() + budget.wait;
        loop {
            // Registered before the check so a release between the two is not missed.
            let freed = budget.freed.notified();
            if budget.try_take(n) {
                self.bytes += n;
                let used = budget.used.load(Ordering::Acquire);
                budget.gauge.set(i64::try_from(used).unwrap_or(i64::MAX));
                return Ok(());
            }
            if n > budget.limit || tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(BudgetFull {
                    retry_after_secs: budget.wait.as_secs().max(1),
                });
            }
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_the_limit_waits_and_releases() {
        let budget = BodyBudget::new(100, Duration::from_millis(200), Gauge::default());
        let mut a = budget.reservation();
        a.grow(60).await.unwrap();
        let mut b = budget.reservation();
        let started = Instant::now();
        assert_eq!(
            b.grow(50).await,
            Err(BudgetFull {
                retry_after_secs: 1
            })
        );
        assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
        b.grow(40).await.unwrap();
        assert_eq!(budget.used.load(Ordering::Acquire), 100);
        // A waiter gets in as soon as room is freed.
        let waiter = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                let mut c = budget.reservation();
                c.grow(30).await.map(|()| c.bytes())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert_eq!(waiter.await.unwrap(), Ok(30));
        drop(b);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
        assert_eq!(budget.gauge.get(), 0);
        let mut huge = budget.reservation();
        assert!(huge.grow(101).await.is_err(), "more than the whole budget");
    }
}
