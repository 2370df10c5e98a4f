//! The bound on requests in flight (`import.max_concurrent_queries`), handing a freed slot to
//! the waiting request with the highest priority rather than to the first in line.
//!
//! The import's wall time is at least its longest page chain (one query's pages, fetched one
//! after the other). When more queries stream than there are slots, a first-come order makes
//! every query wait its turn, the longest one included; giving the slot to the query with the
//! most rows still to read keeps the longest chain moving while the shorter ones share the
//! other slots. Requests whose size is not known yet go first: describe `User`, `User`'s
//! first page and a Bulk API 2.0 job's creation ([`CHAIN`]), which the longest chains wait
//! on, then the small tables and a job's polls and deletion ([`URGENT`]), then the first
//! pages of the other big objects ([`EARLY`]).

use std::{
    cmp::Ordering,
    collections::BinaryHeap,
    sync::{Arc, Mutex},
};

use invhost_plugin_api::Error;
use tokio::sync::oneshot;

/// Priority of the requests a long chain waits on: describe `User` and `User`'s first page,
/// and a Bulk API 2.0 job's creation (the job's whole chain waits for it).
pub const CHAIN: u64 = u64::MAX;
/// Priority of a request whose query's size is unknown, or that others wait for (the small
/// tables; a Bulk API 2.0 job's polls and deletion).
pub const URGENT: u64 = u64::MAX - 1;
/// Priority of the first page of a big object that nothing waits for: after the [`CHAIN`]
/// and [`URGENT`] ones, before requests of known size.
pub const EARLY: u64 = u64::MAX - 2;

/// At most `slots` permits out at once; see the module documentation.
#[derive(Debug, Clone)]
pub struct Limiter(Arc<Mutex<Slots>>);

#[derive(Debug)]
struct Slots {
    free: usize,
    waiting: BinaryHeap<Waiter>,
    /// Arrival order, so that equal priorities are served first come, first served.
    arrivals: u64,
}

#[derive(Debug)]
struct Waiter {
    priority: u64,
    arrival: u64,
    grant: oneshot::Sender<Permit>,
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then(other.arrival.cmp(&self.arrival))
    }
}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Waiter {}

/// One slot, given back when dropped.
#[derive(Debug)]
pub struct Permit(Option<Limiter>);

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(limiter) = self.0.take() {
            limiter.release();
        }
    }
}

impl Limiter {
    /// A limiter of `slots` slots (at least one).
    pub fn new(slots: usize) -> Self {
        Limiter(Arc::new(Mutex::new(Slots {
            free: slots.max(1),
            waiting: BinaryHeap::new(),
            arrivals: 0,
        })))
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot; among waiting requests the highest `priority` gets the next one.
    /// Dropping the future while it waits gives up its place (and any slot it was just
    /// handed).
    pub async fn acquire(&self, priority: u64) -> Result<Permit, Error> {
        let granted = {
            let mut slots = self.slots();
            if slots.free > 0 {
                slots.free -= 1;
                return Ok(Permit(Some(self.clone())));
            }
            let (grant, granted) = oneshot::channel();
            slots.arrivals += 1;
            let arrival = slots.arrivals;
            slots.waiting.push(Waiter {
                priority,
                arrival,
                grant,
            });
            granted
        };
        granted
            .await
            .map_err(|_| Error::internal("the request limiter was closed"))
    }

    /// Hands a freed slot to the most urgent waiter still waiting, or frees it.
    fn release(&self) {
        let mut slots = self.slots();
        while let Some(waiter) = slots.waiting.pop() {
            match waiter.grant.send(Permit(Some(self.clone()))) {
                Ok(()) => return,
                // That waiter gave up: the slot is still this one, offered to the next.
                Err(mut permit) => permit.0 = None,
            }
        }
        slots.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Waits until `n` requests wait for a slot (however slowly the machine runs the tasks).
    async fn until_waiting(limiter: &Limiter, n: usize) {
        for _ in 0..5000 {
            if limiter.slots().waiting.len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{n} waiters never arrived");
    }

    #[tokio::test]
    async fn the_most_urgent_waiter_gets_the_next_slot_and_the_bound_holds() {
        let limiter = Limiter::new(2);
        let first = limiter.acquire(0).await.expect("free");
        let second = limiter.acquire(0).await.expect("free");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (waiting, priority) in [1, 7, 3, 7].into_iter().enumerate() {
            let (shared, order) = (limiter.clone(), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let permit = shared.acquire(priority).await.expect("granted");
                order.lock().expect("lock").push(priority);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(permit);
            }));
            // Arrival order is the spawn order.
            until_waiting(&limiter, waiting + 1).await;
        }
        assert!(order.lock().expect("lock").is_empty(), "both slots are out");
        assert_eq!(limiter.slots().waiting.len(), 4);
        drop(first);
        drop(second);
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(*order.lock().expect("lock"), [7, 7, 3, 1]);
        assert_eq!(limiter.slots().free, 2, "every slot came back");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_passes_its_slot_on() {
        let limiter = Limiter::new(1);
        let held = limiter.acquire(0).await.expect("free");
        let gave_up = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(URGENT).await.map(drop) })
        };
        until_waiting(&limiter, 1).await;
        let patient = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(0).await.map(drop) })
        };
        until_waiting(&limiter, 2).await;
        gave_up.abort();
        assert!(gave_up.await.is_err(), "aborted");
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), patient)
            .await
            .expect("the slot reached the patient waiter")
            .expect("task")
            .expect("granted");
        assert_eq!(limiter.slots().free, 1);
    }
}
