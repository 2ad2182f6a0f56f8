//! Black-76 prices and Greeks in fixed point, with the forward F (the oracle's spot), strike K, volatility σ
//! and time to expiry T, and a discount of 1 (rates are 0 on shardex's options shards).
//!
//! d1 = (ln(F/K) + σ²T/2)/(σ√T), d2 = d1 − σ√T; call = F·N(d1) − K·N(d2), put = K·N(−d2) − F·N(−d1). The
//! out-of-the-money option is priced and the other follows by parity (call − put = F − K, exactly), so
//! neither side suffers the cancellation of a deep in-the-money formula. Prices are floored to the micro-USD
//! (callers that charge margin add their own unit against the account). Every input is bounded and anything
//! outside is an error, never an extrapolation: σ√T at or above [`MAX_TOTAL_VOL`] prices the call at F and
//! the put at K; T = 0 or σ = 0 prices intrinsic value.

use super::{
    fixed::{div, ln, mul, mul_div_floor, sqrt, MathError, WAD},
    normal::{cdf, pdf},
};

/// A year, ms (365 days).
pub const YEAR_MS: u64 = 31_536_000_000;
/// Largest forward or strike: 10^7 USD per unit, in micro-USD.
pub const MAX_PRICE_MICROS: u64 = 10_000_000_000_000;
/// Largest volatility: 1,000%, in parts per million.
pub const MAX_VOL_PPM: u32 = 10_000_000;
/// Longest time to expiry: 10 years, ms.
pub const MAX_TAU_MS: u64 = 10 * YEAR_MS;
/// Total volatility σ√T from which the call is worth the forward (the put the strike).
pub const MAX_TOTAL_VOL: i128 = 24 * WAD;

/// What is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Inputs {
    /// Forward (spot), micro-USD per unit, 1 to [`MAX_PRICE_MICROS`].
    pub forward_micros: u64,
    /// Strike, micro-USD per unit, 1 to [`MAX_PRICE_MICROS`].
    pub strike_micros: u64,
    /// Volatility, parts per million per √year (1,000,000 = 100%), at most [`MAX_VOL_PPM`].
    pub vol_ppm: u32,
    /// Time to expiry, ms, at most [`MAX_TAU_MS`].
    pub tau_ms: u64,
}

/// Prices and Greeks of the call and put at one strike. Greeks are fixed point (10^-18) in USD units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Call price, micro-USD per unit, floored.
    pub call_micros: u64,
    /// Put price, micro-USD per unit, floored.
    pub put_micros: u64,
    /// ∂call/∂F = N(d1), in [0, 1].
    pub call_delta: i128,
    /// ∂put/∂F = N(d1) − 1, in [−1, 0].
    pub put_delta: i128,
    /// ∂²/∂F² = n(d1)/(F·σ√T), per USD (the same for call and put).
    pub gamma: i128,
    /// ∂/∂σ = F·n(d1)·√T, USD per 1.00 of volatility (the same for call and put).
    pub vega: i128,
    /// ∂/∂t = −F·n(d1)·σ/(2√T), USD per year (the same for call and put with a discount of 1).
    pub theta: i128,
}

fn check(inputs: &Inputs) -> Result<(), MathError> {
    let prices = 1..=MAX_PRICE_MICROS;
    if !prices.contains(&inputs.forward_micros) || !prices.contains(&inputs.strike_micros) {
        return Err(MathError::Domain("black76 (forward and strike must be 1 to 10^13 micro-USD)"));
    }
    if inputs.vol_ppm > MAX_VOL_PPM || inputs.tau_ms > MAX_TAU_MS {
        return Err(MathError::Domain("black76 (volatility above 1000% or expiry beyond 10 years)"));
    }
    Ok(())
}

/// Prices and Greeks of `inputs` (see the module docs).
pub fn quote(inputs: &Inputs) -> Result<Quote, MathError> {
    check(inputs)?;
    let (f, k) = (i128::from(inputs.forward_micros), i128::from(inputs.strike_micros));
    let intrinsic = |call: i128, put: i128, delta: i128| Quote {
        call_micros: call as u64,
        put_micros: put as u64,
        call_delta: delta,
        put_delta: delta - WAD,
        gamma: 0,
        vega: 0,
        theta: 0,
    };
    let at_expiry = match f.cmp(&k) {
        std::cmp::Ordering::Greater => intrinsic(f - k, 0, WAD),
        std::cmp::Ordering::Less => intrinsic(0, k - f, 0),
        std::cmp::Ordering::Equal => intrinsic(0, 0, WAD / 2),
    };
    // σ and T in fixed point, then σ√T.
    let sigma = i128::from(inputs.vol_ppm) * 1_000_000_000_000;
    let tau = mul_div_floor(i128::from(inputs.tau_ms), WAD, i128::from(YEAR_MS))?;
    let root_tau = sqrt(tau)?;
    let total = mul(sigma, root_tau)?;
    if total == 0 {
        return Ok(at_expiry);
    }
    if total >= MAX_TOTAL_VOL {
        return Ok(Quote { call_micros: f as u64, put_micros: k as u64, call_delta: WAD, put_delta: 0, ..at_expiry });
    }
    let moneyness = ln(mul_div_floor(f, WAD, k)?)?;
    let d1 = div(moneyness + mul(total, total)? / 2, total)?;
    let d2 = d1 - total;
    // The out-of-the-money side in micro-USD·10^18, floored once; the other by parity.
    let (call, put) = if f >= k {
        let put_fine = k * cdf(-d2)? - f * cdf(-d1)?;
        let put = put_fine.div_euclid(WAD).max(0);
        (put + f - k, put)
    } else {
        let call_fine = f * cdf(d1)? - k * cdf(d2)?;
        let call = call_fine.div_euclid(WAD).max(0);
        (call, call + k - f)
    };
    let density = pdf(d1)?;
    let forward_usd = f * 1_000_000_000_000;
    let call_delta = cdf(d1)?;
    Ok(Quote {
        call_micros: u64::try_from(call).map_err(|_| MathError::Overflow("black76 call"))?,
        put_micros: u64::try_from(put).map_err(|_| MathError::Overflow("black76 put"))?,
        call_delta,
        put_delta: call_delta - WAD,
        gamma: div(density, mul(forward_usd, total)?)?,
        vega: mul(mul(forward_usd, density)?, root_tau)?,
        theta: -div(mul(mul(forward_usd, density)?, sigma)?, 2 * root_tau)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Black-76 with discount 1 in f64 (libm's erfc), the out-of-the-money side directly.
    fn reference(f: f64, k: f64, sigma: f64, t: f64) -> (f64, f64) {
        let n = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let total = sigma * t.sqrt();
        let d1 = ((f / k).ln() + total * total / 2.0) / total;
        let d2 = d1 - total;
        let call = f * n(d1) - k * n(d2);
        let put = k * n(-d2) - f * n(-d1);
        (call, put)
    }

    fn inputs(f: u64, k: u64, vol_ppm: u32, tau_ms: u64) -> Inputs {
        Inputs { forward_micros: f, strike_micros: k, vol_ppm, tau_ms }
    }

    proptest! {
        /// Within 1e-12·(F+K) + 2 micro-USD of the f64 reference over forwards and strikes of $1 to $10^7,
        /// volatilities of 1% to 500% and expiries of 1 s to 2 years; inside the no-arbitrage bounds.
        #[test]
        fn prices_match_a_float_reference_and_respect_the_bounds(
            f in 1_000_000u64..=MAX_PRICE_MICROS,
            ratio in 200u64..5_000,
            vol_ppm in 10_000u32..5_000_000,
            tau_ms in 1_000u64..2 * YEAR_MS,
        ) {
            let k = (u128::from(f) * u128::from(ratio) / 1_000).clamp(1, u128::from(MAX_PRICE_MICROS)) as u64;
            let q = quote(&inputs(f, k, vol_ppm, tau_ms)).expect("in domain");
            let (ff, kf) = (f as f64, k as f64);
            let (call, put) = reference(ff, kf, vol_ppm as f64 / 1e6, tau_ms as f64 / YEAR_MS as f64);
            let bound = 1e-12 * (ff + kf) + 2.0;
            prop_assert!((q.call_micros as f64 - call).abs() <= bound, "call {} want {}", q.call_micros, call);
            prop_assert!((q.put_micros as f64 - put).abs() <= bound, "put {} want {}", q.put_micros, put);
            prop_assert_eq!(i128::from(q.call_micros) - i128::from(q.put_micros), i128::from(f) - i128::from(k));
            prop_assert!(q.call_micros >= f.saturating_sub(k) && q.call_micros <= f);
            prop_assert!(q.put_micros >= k.saturating_sub(f) && q.put_micros <= k);
            prop_assert!((0..=WAD).contains(&q.call_delta) && q.put_delta == q.call_delta - WAD);
            prop_assert!(q.gamma >= 0 && q.vega >= 0 && q.theta <= 0);
        }

        /// The call does not fall when the forward, the volatility or the time to expiry rise.
        #[test]
        fn the_call_is_monotone(
            f in 1_000_000u64..1_000_000_000_000,
            k in 1_000_000u64..1_000_000_000_000,
            vol_ppm in 10_000u32..2_000_000,
            tau_ms in 60_000u64..YEAR_MS,
        ) {
            let base = quote(&inputs(f, k, vol_ppm, tau_ms)).expect("in domain").call_micros;
            for bumped in [inputs(f + f / 100, k, vol_ppm, tau_ms), inputs(f, k, vol_ppm + vol_ppm / 10, tau_ms),
                           inputs(f, k, vol_ppm, tau_ms + tau_ms / 10)] {
                prop_assert!(quote(&bumped).expect("in domain").call_micros + 1 >= base);
            }
        }

        /// The call is convex in the strike (a butterfly is never worth less than the two micro-USD its
        /// floors can lose) and its delta is the slope of its price in the forward.
        #[test]
        fn convex_in_strike_and_delta_is_the_slope(
            f in 1_000_000u64..1_000_000_000_000,
            ratio in 500u64..2_000,
            vol_ppm in 100_000u32..2_000_000,
            tau_ms in 86_400_000u64..YEAR_MS,
        ) {
            let k = f / 1_000 * ratio;
            let h = (k / 100).max(1);
            let call = |f: u64, k: u64| quote(&inputs(f, k, vol_ppm, tau_ms)).expect("in domain").call_micros;
            let butterfly = i128::from(call(f, k - h)) + i128::from(call(f, k + h)) - 2 * i128::from(call(f, k));
            prop_assert!(butterfly >= -2, "butterfly {butterfly}");
            let step = f / 10_000;
            let slope = (call(f + step, k) as f64 - call(f - step, k) as f64) / (2 * step) as f64;
            let delta = quote(&inputs(f, k, vol_ppm, tau_ms)).expect("in domain").call_delta as f64 / WAD as f64;
            prop_assert!((slope - delta).abs() <= 1e-3 + 1.0 / step as f64, "slope {slope}, delta {delta}");
        }
    }

    /// Golden values. ATM, F = K = $1,500, σ = 100%, 7 days: 82.805080668634559515 (lyra-utils' Black-76
    /// benchmark, computed in high precision). ATM the call is F·(2N(σ√T/2) − 1) exactly.
    #[test]
    fn golden_values() {
        let q = quote(&inputs(1_500_000_000, 1_500_000_000, 1_000_000, 7 * 86_400_000)).expect("in domain");
        assert_eq!((q.call_micros, q.put_micros), (82_805_080, 82_805_080));
        assert_eq!(q.call_delta, 527_601_693_556_211_499);
        // Far out of the money in little time: worth nothing, not a negative number.
        let q = quote(&inputs(1_000_000, 10_000_000, 10_000, 1_000)).expect("in domain");
        assert_eq!((q.call_micros, q.put_micros), (0, 9_000_000));
    }

    /// Every mpmath vector (`vectors.rs`, generated by `scripts/option-vectors.py`): prices within
    /// 10^-15·(F+K) + 1 micro-USD of the exact value (in practice the floor of it), Greeks within 10^-10
    /// relative + 10^-15 (the 10^-18 grain of σ√T dominates when σ√T is tiny).
    #[test]
    fn mpmath_vectors() {
        for &(name, f, k, vol_ppm, tau_ms, exact) in super::super::vectors::VECTORS {
            let q = quote(&inputs(f, k, vol_ppm, tau_ms)).expect("in domain");
            let price_bound = i128::from(f + k) * 1_000 + WAD;
            for (got, want, what) in [(q.call_micros, exact[0], "call"), (q.put_micros, exact[1], "put")] {
                let err = (i128::from(got) * WAD - want).abs();
                assert!(err <= price_bound, "{name}: {what} {got} micro-USD, exact {want} (x10^-18)");
            }
            let greeks = [(q.call_delta, "delta"), (q.gamma, "gamma"), (q.vega, "vega"), (q.theta, "theta")];
            for ((got, what), want) in greeks.into_iter().zip(&exact[2..]) {
                let bound = want.abs() / 10_000_000_000 + 1_000;
                assert!((got - want).abs() <= bound, "{name}: {what} {got}, exact {want} (x10^-18)");
            }
        }
    }

    /// Published textbook values (Hull; Haug through QuantLib's tests), quoted to 4 decimals. They have rates,
    /// so each is Black-76 on the forward S·e^(rT) (`vectors.rs` holds it, floored to the micro-USD) with the
    /// discount D = e^(−rT) applied here: price = D·price76, vega = D·vega76, spot gamma = γ76·F/S.
    #[test]
    fn textbook_values() {
        let usd = |wad: i128| wad as f64 / WAD as f64;
        let find = |name: &str| {
            let v = super::super::vectors::VECTORS.iter().find(|v| v.0 == name).expect("vector exists");
            quote(&inputs(v.1, v.2, v.3, v.4)).expect("in domain")
        };
        let close = |got: f64, want: f64, tol: f64, what: &str| {
            assert!((got - want).abs() <= tol, "{what}: {got}, published {want}");
        };
        // (vector, r·T, published call, published put).
        for (name, rt, call, put) in [
            ("hull bs", 0.05, 4.7594, Some(0.8086)),
            ("hull greeks", 0.05 * 20.0 / 52.0, 2.4005, Some(2.4482)),
            ("haug black76", 0.075, 1.7011, Some(1.7011)),
            ("haug s100 t.1 v.15", 0.01, 1.8734, None),
            ("haug s90 t.1 v.15", 0.01, 0.0205, None),
            ("haug s110 t.5 v.35", 0.05, 15.3086, None),
        ] {
            let (q, d) = (find(name), f64::exp(-rt));
            close(d * q.call_micros as f64 / 1e6, call, 1e-4, name);
            if let Some(put) = put {
                close(d * q.put_micros as f64 / 1e6, put, 1e-4, name);
            }
        }
        // Hull's Greeks: S 49, K 50, r 5%, σ 20%, T 20 weeks: Δ 0.5216, Γ 0.0655, vega 12.105.
        let (q, f, d) = (find("hull greeks"), 49.951_426, (-0.05f64 * 20.0 / 52.0).exp());
        close(usd(q.call_delta), 0.5216, 1e-4, "hull delta");
        close(usd(q.gamma) * f / 49.0, 0.0655, 1e-4, "hull gamma");
        close(d * usd(q.vega), 12.105, 1e-3, "hull vega");
        // Haug's Greeks: S 55, K 60, r 10%, σ 30%, T 0.75: Γ 0.0278, vega 18.9358.
        let (q, f, d) = (find("haug greeks"), 59.283_628, (-0.075f64).exp());
        close(usd(q.gamma) * f / 55.0, 0.0278, 1e-4, "haug gamma");
        close(d * usd(q.vega), 18.9358, 1e-4, "haug vega");
    }

    #[test]
    fn limits_and_edges() {
        let itm = quote(&inputs(2_000_000, 1_000_000, 500_000, 0)).expect("at expiry");
        assert_eq!((itm.call_micros, itm.put_micros, itm.call_delta, itm.gamma), (1_000_000, 0, WAD, 0));
        let flat = quote(&inputs(1_000_000, 2_000_000, 0, YEAR_MS)).expect("no volatility");
        assert_eq!((flat.call_micros, flat.put_micros), (0, 1_000_000));
        let huge = quote(&inputs(1_000_000, 2_000_000, MAX_VOL_PPM, MAX_TAU_MS)).expect("total vol above the cap");
        assert_eq!((huge.call_micros, huge.put_micros), (1_000_000, 2_000_000));
        for bad in [
            inputs(0, 1, 1, 1),
            inputs(1, 0, 1, 1),
            inputs(MAX_PRICE_MICROS + 1, 1, 1, 1),
            inputs(1, 1, MAX_VOL_PPM + 1, 1),
            inputs(1, 1, 1, MAX_TAU_MS + 1),
        ] {
            assert!(matches!(quote(&bad), Err(MathError::Domain(_))), "{bad:?}");
        }
    }
}
