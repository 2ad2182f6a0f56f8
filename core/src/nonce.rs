//! Windowed nonces: an account keeps its N highest used nonces; a new nonce must be unused and, once the
//! window is full, above the smallest kept. Out-of-order submission inside the window is allowed, replay never.

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// This nonce is in the window: it was used.
    #[error("nonce {0} was already used")]
    Used(u64),
    /// The window is full and this nonce is not above its smallest entry; it may have been used.
    #[error("nonce {nonce} is too low: the window keeps nonces above {smallest}")]
    TooLow {
        /// The refused nonce.
        nonce: u64,
        /// The smallest nonce the window keeps.
        smallest: u64,
    },
}

/// The used-nonce window of one account: ascending, unique, at most `capacity` entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NonceWindow {
    used: Vec<u64>,
}

impl NonceWindow {
    /// Rebuilds a window from stored nonces (any order; duplicates collapse).
    pub fn from_stored(mut used: Vec<u64>) -> Self {
        used.sort_unstable();
        used.dedup();
        Self { used }
    }

    /// The kept nonces, ascending (the stored form).
    pub fn as_slice(&self) -> &[u64] {
        &self.used
    }

    /// Checks `nonce` without recording it.
    pub fn check(&self, nonce: u64, capacity: usize) -> Result<(), NonceError> {
        if self.used.binary_search(&nonce).is_ok() {
            return Err(NonceError::Used(nonce));
        }
        match self.used.first() {
            Some(&smallest) if self.used.len() >= capacity && nonce < smallest => {
                Err(NonceError::TooLow { nonce, smallest })
            }
            _ => Ok(()),
        }
    }

    /// Checks and records `nonce`, dropping the smallest kept nonce when the window overflows.
    pub fn use_nonce(&mut self, nonce: u64, capacity: usize) -> Result<(), NonceError> {
        self.check(nonce, capacity)?;
        let at = self.used.partition_point(|&n| n < nonce);
        self.used.insert(at, nonce);
        while self.used.len() > capacity.max(1) {
            self.used.remove(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn window_accepts_out_of_order_and_rejects_replay() {
        let mut w = NonceWindow::default();
        for n in [5, 3, 4] {
            assert_eq!(w.use_nonce(n, 3), Ok(()));
        }
        assert_eq!(w.use_nonce(4, 3), Err(NonceError::Used(4)));
        assert_eq!(w.use_nonce(2, 3), Err(NonceError::TooLow { nonce: 2, smallest: 3 }));
        assert_eq!(w.use_nonce(9, 3), Ok(()));
        assert_eq!(w.as_slice(), &[4, 5, 9]);
        assert_eq!(w.use_nonce(3, 3), Err(NonceError::TooLow { nonce: 3, smallest: 4 }));
    }

    proptest! {
        /// Whatever the order of submissions, no nonce is ever accepted twice.
        #[test]
        fn never_accepts_a_nonce_twice(nonces in proptest::collection::vec(0u64..64, 0..200), cap in 1usize..16) {
            let mut w = NonceWindow::default();
            let mut accepted = std::collections::BTreeSet::new();
            for n in nonces {
                if w.use_nonce(n, cap).is_ok() {
                    prop_assert!(accepted.insert(n), "nonce {} accepted twice", n);
                }
                prop_assert!(w.as_slice().len() <= cap);
                prop_assert!(w.as_slice().windows(2).all(|p| p[0] < p[1]));
            }
        }
    }
}
