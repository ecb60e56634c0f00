//! NumPy's floating-point orders, where Gymnasium's rewards depend on them: `np.sum`'s
//! pairwise summation and `np.linalg.norm`'s BLAS dot product. Copying the order is what
//! makes rewards equal Gymnasium's bit for bit (a plain left-to-right sum differs from 8
//! elements on).

use std::ops::Add;

/// `np.sum` of a contiguous array: sequential below 8 elements, eight interleaved partial
/// sums up to 128, and halves (at a multiple of 8) beyond.
pub(crate) fn pairwise_sum<T: Copy + Default + Add<Output = T>>(a: &[T]) -> T {
    let n = a.len();
    if n < 8 {
        let mut res = T::default();
        for &x in a {
            res = res + x;
        }
        res
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] = r[j] + a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res = res + a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.sum(np.square(x))` in x's own precision, without allocating for short arrays.
pub(crate) fn sum_of_squares_f32(x: &[f32]) -> f32 {
    let mut buf = [0.0f32; 32];
    if x.len() <= buf.len() {
        for (b, v) in buf.iter_mut().zip(x) {
            *b = v * v;
        }
        pairwise_sum(&buf[..x.len()])
    } else {
        pairwise_sum(&x.iter().map(|v| v * v).collect::<Vec<_>>())
    }
}

/// The same in f64, for `np.square(data.ctrl)` and `np.square(data.cfrc_ext)`.
pub(crate) fn sum_of_squares(x: impl Iterator<Item = f64>, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(x.map(|v| v * v));
    pairwise_sum(scratch)
}

/// `np.linalg.norm` of a short vector: OpenBLAS's dot product accumulates with fused
/// multiply-adds from 0 (measured against NumPy 2.4: every one of 10,000 random 2- and
/// 3-vectors agrees, where a plain sum of squares differs in ~10%).
pub(crate) fn norm(x: &[f64]) -> f64 {
    let mut d = 0.0f64;
    for &v in x {
        d = v.mul_add(v, d);
    }
    d.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_differs_from_sequential_from_eight_elements() {
        // 1e8 absorbs the ones when added in order, but not in the interleaved sums.
        let mut a = vec![1.0f32; 16];
        a[0] = 1e8;
        let sequential = a.iter().fold(0.0f32, |s, x| s + x);
        assert_eq!(sequential, 1e8);
        // Lane 0 absorbs its one (f32's spacing at 1e8 is 8); the other seven lanes hold 2 each,
        // and their 14 reach 1e8 as 2 (absorbed), then 4 (a tie, to even: absorbed), then 8.
        assert_eq!(pairwise_sum(&a), 1e8 + 8.0);
        assert_eq!(pairwise_sum(&a[..7]), 1e8);
        assert_eq!(pairwise_sum::<f64>(&[]), 0.0);
    }

    #[test]
    fn norm_of_a_pythagorean_triple_is_exact() {
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
        assert_eq!(norm(&[0.0, 0.0, 0.0]), 0.0);
    }
}
