//! Greeks in the units clients show, from one Black-76 quote, and their position-weighted sums: what the
//! node reports and what a client recomputes from the same records (spot, the expiry's volatility, block
//! time, positions) to check it. Every conversion truncates toward zero.
//!
//! Per unit of underlying: delta in millionths; gamma in 10^-12 per USD of spot move; vega in micro-USD per
//! volatility point (1%); theta in micro-USD per day (a 365-day year). An account's sums weight each series
//! by its position in units of underlying (`lots · lot_size / 10^6`), so delta reads in micro-units.

use super::{
    black76::{quote, Inputs},
    fixed::MathError,
    series::OptionKind,
};

/// One series' Greeks per unit of underlying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Greeks {
    /// Black-76 price, micro-USD per unit (floored; margin adds its own micro-USD).
    pub price_micros: u64,
    /// ∂price/∂spot, millionths.
    pub delta_ppm: i64,
    /// ∂²price/∂spot², 10^-12 per USD.
    pub gamma_e12: i64,
    /// ∂price/∂σ, micro-USD per volatility point.
    pub vega_micros: i64,
    /// ∂price/∂t, micro-USD per day (negative: time decays a long).
    pub theta_micros: i64,
}

fn narrow(v: i128, what: &'static str) -> Result<i64, MathError> {
    i64::try_from(v).map_err(|_| MathError::Overflow(what))
}

/// The Greeks of a `kind` option on `inputs`.
pub fn of(inputs: &Inputs, kind: OptionKind) -> Result<Greeks, MathError> {
    let q = quote(inputs)?;
    let (price, delta) = match kind {
        OptionKind::Call => (q.call_micros, q.call_delta),
        OptionKind::Put => (q.put_micros, q.put_delta),
    };
    // 10^-18 fixed point: delta to 10^-6, gamma to 10^-12, vega (per 1.00) to micro-USD per 0.01, theta (per
    // year) to micro-USD per day.
    Ok(Greeks {
        price_micros: price,
        delta_ppm: narrow(delta / 1_000_000_000_000, "delta")?,
        gamma_e12: narrow(q.gamma / 1_000_000, "gamma")?,
        vega_micros: narrow(q.vega / 100_000_000_000_000, "vega")?,
        theta_micros: narrow(q.theta / 1_000_000_000_000 / 365, "theta")?,
    })
}

/// Position-weighted Greeks of an account: Σ units · greek, units = lots · lot_size / 10^6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exposure {
    /// Σ units · delta, micro-units of underlying.
    pub delta_micro_units: i64,
    /// Σ units · gamma, 10^-12 per USD.
    pub gamma_e12: i64,
    /// Σ units · vega, micro-USD per volatility point.
    pub vega_micros: i64,
    /// Σ units · theta, micro-USD per day.
    pub theta_micros: i64,
}

impl Exposure {
    /// Adds `lots` lots (of `lot_size` base micro-units) of a series with `g`.
    pub fn add(&mut self, lots: i64, lot_size: u64, g: &Greeks) -> Result<(), MathError> {
        let units_e6 = i128::from(lots) * i128::from(lot_size);
        let term = |greek: i64| units_e6 * i128::from(greek) / 1_000_000;
        let sum = |acc: i64, greek: i64, what| narrow(i128::from(acc) + term(greek), what);
        self.delta_micro_units = sum(self.delta_micro_units, g.delta_ppm, "delta")?;
        self.gamma_e12 = sum(self.gamma_e12, g.gamma_e12, "gamma")?;
        self.vega_micros = sum(self.vega_micros, g.vega_micros, "vega")?;
        self.theta_micros = sum(self.theta_micros, g.theta_micros, "theta")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F = K = $2,000, σ = 80%, 30 days.
    const ATM_MONTH: Inputs = Inputs {
        forward_micros: 2_000_000_000,
        strike_micros: 2_000_000_000,
        vol_ppm: 800_000,
        tau_ms: 30 * 86_400_000,
    };

    /// Checked against Black-76 at 30 digits (mpmath): F = K = $2,000, σ = 80%, 30 days. σ√T = 0.229353,
    /// d1 = 0.114676; N(d1) = 0.545649204, n(d1) = 0.396327704. Call = F·(2N(d1) − 1) = 182.596816;
    /// gamma = n/(F·σ√T) = 0.000864012953 per USD; vega = F·n·√T = 2.272472 per point; theta =
    /// −F·n·σ/(2√T) = −3.029963 per day.
    #[test]
    fn greeks_of_an_at_the_money_month() {
        let inputs = ATM_MONTH;
        let call = of(&inputs, OptionKind::Call).expect("in domain");
        let put = of(&inputs, OptionKind::Put).expect("in domain");
        assert_eq!(call.price_micros, 182_596_815);
        assert_eq!((call.delta_ppm, put.delta_ppm), (545_649, -454_350));
        assert_eq!(call.gamma_e12, 864_012_952);
        assert_eq!(call.vega_micros, 2_272_472);
        assert_eq!(call.theta_micros, -3_029_963);
        assert_eq!(
            (put.gamma_e12, put.vega_micros, put.theta_micros),
            (call.gamma_e12, call.vega_micros, call.theta_micros)
        );
    }

    #[test]
    fn a_portfolio_sums_its_positions_by_units() {
        let inputs = ATM_MONTH;
        let call = of(&inputs, OptionKind::Call).expect("in domain");
        let put = of(&inputs, OptionKind::Put).expect("in domain");
        // Long 2 calls and short 1 put, in lots of 0.001: 2,000 and −1,000 lots.
        let mut e = Exposure::default();
        e.add(2_000, 1_000, &call).expect("fits");
        e.add(-1_000, 1_000, &put).expect("fits");
        assert_eq!(e.delta_micro_units, 2 * call.delta_ppm - put.delta_ppm);
        assert_eq!(e.gamma_e12, call.gamma_e12);
        assert_eq!(e.vega_micros, call.vega_micros);
        assert_eq!(e.theta_micros, call.theta_micros);
        // A straddle's delta (long one call, long one put) is call delta + put delta = 2N(d1) − 1.
        let mut straddle = Exposure::default();
        straddle.add(1_000, 1_000, &call).expect("fits");
        straddle.add(1_000, 1_000, &put).expect("fits");
        assert_eq!(straddle.delta_micro_units, call.delta_ppm + put.delta_ppm);
        assert_eq!(straddle.gamma_e12, 2 * call.gamma_e12);
    }
}
