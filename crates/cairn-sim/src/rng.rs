//! A small seeded random number generator (SplitMix64) and the few distributions the
//! company needs. Hand-written rather than the `rand` crate so that a seed gives the same
//! company on every platform and every version of cairn: the output is part of the
//! product (the demo's summary is compared byte for byte).
//!
//! Every draw comes from a stream keyed by what it is about (the seed, an account, a day,
//! a purpose): what one account does on one day does not shift when another account or
//! another day draws more or fewer numbers, so a program nudging one contact leaves the
//! rest of the company as it was.

/// SplitMix64 (Steele, Lea, Flood 2014): 64 bits of state, passes BigCrush.
#[derive(Debug, Clone)]
pub struct Rng(u64);

/// One SplitMix64 output step, also the mixer of stream keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The stream of `seed` for the given key parts (an account, a day, a purpose).
    pub fn keyed(seed: u64, key: &[u64]) -> Rng {
        let mut state = mix(seed ^ GOLDEN);
        for k in key {
            state = mix(state ^ k.wrapping_mul(GOLDEN).wrapping_add(0x632B_E59B_D9B4_E019));
        }
        Rng(state)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// A whole number in `lo..=hi`.
    pub fn int(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }

    /// True with probability `p` (clamped to [0, 1]).
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p.clamp(0.0, 1.0)
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A log-normal draw with the given median and the standard deviation of its log.
    pub fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// A Poisson draw (Knuth's method; for the small means used here, below 30).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean.clamp(0.0, 30.0)).exp();
        let mut k = 0;
        let mut p = self.unit();
        while p > limit {
            k += 1;
            p *= self.unit();
        }
        k
    }

    /// One of `items`, uniformly (`None` when empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get((self.next_u64() % items.len() as u64) as usize)
    }

    /// The index drawn with the given weights (the last index when they sum to zero).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// A stable 64-bit key of a text (FNV-1a), to key a stream by a step or program id.
pub fn text_key(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs of SplitMix64 seeded with 1234567, computed by a Python
        // transcription of the reference C code (Vigna, prng.di.unimi.it/splitmix64.c):
        // s += 0x9E3779B97F4A7C15; z = s; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
        // z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31 (all mod 2^64).
        let mut r = Rng::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn keyed_streams_differ_by_key_and_repeat_by_key() {
        let a: Vec<u64> = (0..4).map(|_| Rng::keyed(7, &[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::keyed(7, &[1, 2]).next_u64(), Rng::keyed(7, &[2, 1]).next_u64());
        assert_ne!(Rng::keyed(7, &[1, 2]).next_u64(), Rng::keyed(8, &[1, 2]).next_u64());
    }

    #[test]
    fn draws_have_the_moments_they_should() {
        let mut r = Rng::new(42);
        let n = 200_000;
        let units: Vec<f64> = (0..n).map(|_| r.unit()).collect();
        let mean = units.iter().sum::<f64>() / n as f64;
        // Uniform: mean 1/2, standard error sqrt(1/12/n) = 0.00065; 5 s.e. below.
        assert!((mean - 0.5).abs() < 0.0033, "{mean}");
        let normals: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let m = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.012 && (var - 1.0).abs() < 0.02, "{m} {var}");
        // Poisson(2.5): mean and variance 2.5.
        let ps: Vec<f64> = (0..n).map(|_| f64::from(r.poisson(2.5))).collect();
        let pm = ps.iter().sum::<f64>() / n as f64;
        let pv = ps.iter().map(|x| (x - pm) * (x - pm)).sum::<f64>() / n as f64;
        assert!((pm - 2.5).abs() < 0.02 && (pv - 2.5).abs() < 0.05, "{pm} {pv}");
        let hits = (0..n).filter(|_| r.chance(0.3)).count() as f64 / n as f64;
        assert!((hits - 0.3).abs() < 0.006, "{hits}");
        let mut counts = [0u32; 3];
        for _ in 0..n {
            counts[r.weighted(&[1.0, 2.0, 1.0])] += 1;
        }
        let middle = f64::from(counts[1]) / n as f64;
        assert!((middle - 0.5).abs() < 0.006, "{counts:?}");
    }
}
