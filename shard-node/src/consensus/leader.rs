//! What this validator knows of the round in progress: height, round and proposer, for routing
//! submissions to the proposer and for status. Updated by the consensus host, read by the RPC.

use std::sync::RwLock;

use shardex_core::AccountId;

/// The round in progress as this node last heard it from its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundView {
    /// Height being decided.
    pub height: u64,
    /// Its round.
    pub round: u32,
    /// The proposer of that round, once a round started.
    pub proposer: Option<AccountId>,
    /// Rounds above 0 started since this node started: each one is a proposer that failed to get its block
    /// decided in time.
    pub round_changes: u64,
}

/// Shared view of the round in progress.
#[derive(Debug)]
pub struct Leader {
    me: AccountId,
    view: RwLock<RoundView>,
}

impl Leader {
    /// The view of validator `me`, before any round started.
    pub fn new(me: AccountId) -> Self {
        Self { me, view: RwLock::new(RoundView::default()) }
    }

    /// This validator's key.
    pub fn me(&self) -> AccountId {
        self.me
    }

    /// The round in progress.
    pub fn view(&self) -> RoundView {
        *self.view.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Consensus started `round` of `height`, proposed by `proposer`.
    pub fn started(&self, height: u64, round: u32, proposer: AccountId) {
        let mut v = self.view.write().unwrap_or_else(|p| p.into_inner());
        if round > 0 && (v.height, v.round) != (height, round) {
            v.round_changes += 1;
        }
        (v.height, v.round, v.proposer) = (height, round, Some(proposer));
    }

    /// `height` was committed: the next height's proposer is not known until its round starts, but the
    /// sticky leader is this block's proposer, which the view keeps.
    pub fn committed(&self, height: u64) {
        let mut v = self.view.write().unwrap_or_else(|p| p.into_inner());
        if v.height <= height {
            (v.height, v.round) = (height + 1, 0);
        }
    }

    /// The validator submissions should go to, when it is another one.
    pub fn route(&self) -> Route {
        match self.view().proposer {
            None => Route::Unknown,
            Some(p) if p == self.me => Route::Here,
            Some(p) => Route::To(p),
        }
    }
}

/// Where a submission goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// This node proposes: admit here.
    Here,
    /// Another validator proposes.
    To(AccountId),
    /// No round started yet.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_to_the_proposer_of_the_round_and_counts_round_changes() {
        let (me, other) = (AccountId([1; 32]), AccountId([2; 32]));
        let l = Leader::new(me);
        assert_eq!(l.route(), Route::Unknown);
        l.started(5, 0, other);
        assert_eq!(l.route(), Route::To(other));
        l.started(5, 1, me);
        assert_eq!((l.route(), l.view().round_changes), (Route::Here, 1));
        // The engine can report one round twice (a replay): counted once.
        l.started(5, 1, me);
        assert_eq!(l.view().round_changes, 1);
        l.committed(5);
        assert_eq!((l.view().height, l.view().round, l.route()), (6, 0, Route::Here));
    }
}
