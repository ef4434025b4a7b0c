//! A minimal unsigned big integer (little-endian 64-bit limbs), enough for
//! the parameter checks and the exact noise measurement. Not on any hot
//! path; variable time, public data only.

use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BigUint {
    limbs: Vec<u64>,
}

impl BigUint {
    pub fn zero() -> Self {
        Self { limbs: Vec::new() }
    }

    pub fn one() -> Self {
        Self { limbs: vec![1] }
    }

    fn trim(mut self) -> Self {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
        self
    }

    pub fn mul_u64(&self, m: u64) -> Self {
        let mut out = Vec::with_capacity(self.limbs.len() + 1);
        let mut carry = 0u128;
        for &l in &self.limbs {
            let v = l as u128 * m as u128 + carry;
            out.push(v as u64);
            carry = v >> 64;
        }
        out.push(carry as u64);
        Self { limbs: out }.trim()
    }

    pub fn add(&self, other: &Self) -> Self {
        let len = self.limbs.len().max(other.limbs.len());
        let mut out = Vec::with_capacity(len + 1);
        let mut carry = 0u128;
        for i in 0..len {
            let a = *self.limbs.get(i).unwrap_or(&0) as u128;
            let b = *other.limbs.get(i).unwrap_or(&0) as u128;
            let v = a + b + carry;
            out.push(v as u64);
            carry = v >> 64;
        }
        out.push(carry as u64);
        Self { limbs: out }.trim()
    }

    /// `self - other`, requires `self >= other`.
    pub fn sub(&self, other: &Self) -> Self {
        debug_assert!(*self >= *other);
        let mut out = Vec::with_capacity(self.limbs.len());
        let mut borrow = 0i128;
        for i in 0..self.limbs.len() {
            let a = self.limbs[i] as i128;
            let b = *other.limbs.get(i).unwrap_or(&0) as i128;
            let mut v = a - b - borrow;
            borrow = 0;
            if v < 0 {
                v += 1i128 << 64;
                borrow = 1;
            }
            out.push(v as u64);
        }
        Self { limbs: out }.trim()
    }

    /// Halves (floor).
    pub fn half(&self) -> Self {
        let mut out = self.limbs.clone();
        let mut carry = 0u64;
        for l in out.iter_mut().rev() {
            let v = *l;
            *l = (v >> 1) | (carry << 63);
            carry = v & 1;
        }
        Self { limbs: out }.trim()
    }

    /// Number of significant bits (0 for zero).
    pub fn bits(&self) -> u32 {
        match self.limbs.last() {
            None => 0,
            Some(&top) => (self.limbs.len() as u32 - 1) * 64 + (64 - top.leading_zeros()),
        }
    }

    /// Remainder modulo a word.
    #[cfg(test)]
    pub fn rem_u64(&self, m: u64) -> u64 {
        let mut r = 0u128;
        for &l in self.limbs.iter().rev() {
            r = ((r << 64) | l as u128) % m as u128;
        }
        r as u64
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_matches_u128() {
        let a = BigUint::one().mul_u64(u64::MAX).mul_u64(12345);
        let expect = u64::MAX as u128 * 12345;
        assert_eq!(a.rem_u64(1_000_000_007), (expect % 1_000_000_007) as u64);
        assert_eq!(a.bits(), 128 - expect.leading_zeros());
        let b = BigUint::one().mul_u64(999);
        let s = a.add(&b);
        assert_eq!(s.sub(&b), a);
        assert!(s > a);
        assert_eq!(
            a.half().rem_u64(1_000_000_007),
            ((expect / 2) % 1_000_000_007) as u64
        );
        assert_eq!(BigUint::zero().bits(), 0);
    }
}
