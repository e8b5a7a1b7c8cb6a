//! The follower's work queue, fair across organizations.
//!
//! `$all` interleaves every organization's events in commit order. Folding them in that order
//! would make one organization's embedding backlog (a 2,000-skill import is ~20 s of MiniLM on
//! two cores) delay every other organization's plans behind it. Nothing needs that order
//! across organizations (each plan is ranked against its own organization's catalog), only
//! within one. So events wait in one queue per organization, and organizations take turns:
//! one batch each, round-robin. A small organization's plan is folded after at most one batch
//! of a busy one, however long that one's backlog is.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

/// Items queued per tenant and served by batches, tenants in turn. A tenant's items keep
/// their order.
#[derive(Debug)]
pub struct FairQueue<T> {
    queues: HashMap<Uuid, VecDeque<T>>,
    /// Tenants with queued items waiting for a turn, in serving order.
    turns: VecDeque<Uuid>,
    /// The tenant served last, if it has items left: it rejoins the line at the next pop, so
    /// a tenant arriving while its batch is processed goes before it.
    resting: Option<Uuid>,
    len: usize,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            turns: VecDeque::new(),
            resting: None,
            len: 0,
        }
    }
}

impl<T> FairQueue<T> {
    /// Queues `item` behind `tenant`'s earlier items. A tenant new to the queue takes its turn
    /// after the tenants already waiting, and before the one being served.
    pub fn push(&mut self, tenant: Uuid, item: T) {
        let queue = self.queues.entry(tenant).or_default();
        if queue.is_empty() {
            self.turns.push_back(tenant);
        }
        queue.push_back(item);
        self.len += 1;
    }

    /// Items queued, all tenants together.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next batch: the oldest items of the tenant whose turn it is, as many as fit in
    /// `budget` by `cost` (at least one, so an item dearer than the budget still goes). The
    /// tenant then waits behind every other tenant with work, including those that arrive
    /// before the next call.
    pub fn pop_batch(
        &mut self,
        budget: usize,
        cost: impl Fn(&T) -> usize,
    ) -> Option<(Uuid, Vec<T>)> {
        if let Some(last) = self.resting.take() {
            self.turns.push_back(last);
        }
        let tenant = self.turns.pop_front()?;
        let queue = self.queues.get_mut(&tenant)?;
        let mut batch = Vec::new();
        let mut spent = 0usize;
        while let Some(item) = queue.front() {
            let price = cost(item);
            if !batch.is_empty() && spent.saturating_add(price) > budget {
                break;
            }
            spent = spent.saturating_add(price);
            if let Some(item) = queue.pop_front() {
                batch.push(item);
            }
        }
        self.len -= batch.len();
        if queue.is_empty() {
            self.queues.remove(&tenant);
        } else {
            self.resting = Some(tenant);
        }
        Some((tenant, batch))
    }

    /// Puts back a batch that could not be processed, ahead of the tenant's other items (so
    /// nothing is lost or reordered); the tenant waits for its next turn behind the others.
    pub fn unpop(&mut self, tenant: Uuid, batch: Vec<T>) {
        if batch.is_empty() {
            return;
        }
        let queue = self.queues.entry(tenant).or_default();
        if queue.is_empty() {
            self.turns.push_back(tenant);
        }
        self.len += batch.len();
        for item in batch.into_iter().rev() {
            queue.push_front(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_small_tenant_is_served_within_one_batch_of_a_large_backlog() {
        let mut queue = FairQueue::default();
        for i in 0..2_000 {
            queue.push(tenant(1), ("big", i));
        }
        queue.push(tenant(2), ("small", 0));
        assert_eq!(queue.len(), 2_001);

        let (first, batch) = queue.pop_batch(32, |_| 1).unwrap();
        assert_eq!((first, batch.len()), (tenant(1), 32));
        assert_eq!(batch[0], ("big", 0));
        // The next batch is the small tenant's, not the big one's 1,968 others.
        let (second, batch) = queue.pop_batch(32, |_| 1).unwrap();
        assert_eq!((second, batch), (tenant(2), vec![("small", 0)]));
        // Then the big one resumes where it stopped, in order.
        let (third, batch) = queue.pop_batch(32, |_| 1).unwrap();
        assert_eq!((third, batch[0]), (tenant(1), ("big", 32)));
        assert_eq!(queue.len(), 2_000 - 64);
    }

    #[test]
    fn a_tenant_arriving_during_a_batch_is_served_next() {
        let mut queue = FairQueue::default();
        for i in 0..100 {
            queue.push(tenant(1), i);
        }
        // The big tenant's batch is being processed when the small one's item arrives.
        let (first, _) = queue.pop_batch(10, |_| 1).unwrap();
        assert_eq!(first, tenant(1));
        queue.push(tenant(2), 1_000);
        assert_eq!(
            queue.pop_batch(10, |_| 1).unwrap(),
            (tenant(2), vec![1_000])
        );
        assert_eq!(queue.pop_batch(10, |_| 1).unwrap().1[0], 10);
    }

    #[test]
    fn tenants_take_turns_and_costs_bound_a_batch() {
        let mut queue = FairQueue::default();
        for i in 0..5 {
            queue.push(tenant(1), i);
            queue.push(tenant(2), 10 + i);
        }
        queue.push(tenant(3), 100);
        let mut order = Vec::new();
        while let Some((t, batch)) = queue.pop_batch(2, |_| 1) {
            order.push((t.as_u128(), batch));
        }
        assert_eq!(
            order,
            vec![
                (1, vec![0, 1]),
                (2, vec![10, 11]),
                (3, vec![100]),
                (1, vec![2, 3]),
                (2, vec![12, 13]),
                (1, vec![4]),
                (2, vec![14]),
            ]
        );
        assert!(queue.is_empty());
        // An item dearer than the budget still goes, alone; cheap items fill up a batch.
        queue.push(tenant(1), 50);
        queue.push(tenant(1), 1);
        queue.push(tenant(1), 1);
        let cost = |x: &i32| usize::try_from(*x).unwrap();
        assert_eq!(queue.pop_batch(10, cost).unwrap().1, vec![50]);
        assert_eq!(queue.pop_batch(10, cost).unwrap().1, vec![1, 1]);
    }

    #[test]
    fn a_batch_put_back_keeps_its_order_and_yields_the_turn() {
        let mut queue = FairQueue::default();
        for i in 0..4 {
            queue.push(tenant(1), i);
        }
        queue.push(tenant(2), 9);
        let (t, batch) = queue.pop_batch(2, |_| 1).unwrap();
        queue.unpop(t, batch);
        assert_eq!(queue.len(), 5);
        assert_eq!(queue.pop_batch(2, |_| 1).unwrap(), (tenant(2), vec![9]));
        assert_eq!(
            queue.pop_batch(10, |_| 1).unwrap(),
            (tenant(1), vec![0, 1, 2, 3])
        );
        // Put back after its queue emptied: the tenant is queued again.
        queue.unpop(tenant(1), vec![0, 1]);
        assert_eq!(queue.pop_batch(10, |_| 1).unwrap(), (tenant(1), vec![0, 1]));
        assert!(queue.pop_batch(10, |_| 1).is_none());
    }
}
