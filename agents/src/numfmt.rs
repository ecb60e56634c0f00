//! Numbers for people: a compact form of an f64 for messages, tables and directory names, so
//! that τ = 1e-300 prints as `1e-300` and not as a 300-digit decimal.

/// `x` as Rust's shortest round-trip decimal when that is short (0.1, 250, 0.005), else in
/// scientific notation: the shortest exact one when it is short (1e-300), otherwise six
/// significant digits (3.333333e-7). Never longer than about 13 characters.
pub fn compact(x: f64) -> String {
    const SHORT: usize = 12;
    let plain = format!("{x}");
    if plain.len() <= SHORT {
        return plain;
    }
    let exact = format!("{x:e}");
    if exact.len() <= SHORT {
        return exact;
    }
    let rounded = format!("{x:.6e}");
    match rounded.split_once('e') {
        Some((mantissa, exp)) if mantissa.contains('.') => {
            format!("{}e{exp}", mantissa.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => rounded,
    }
}

/// `x` exactly (it parses back to the same f64), in the shorter of plain decimal and
/// scientific notation: for names and arguments that are read back. At most 24 characters.
pub fn exact_short(x: f64) -> String {
    let (plain, sci) = (format!("{x}"), format!("{x:e}"));
    if sci.len() < plain.len() {
        sci
    } else {
        plain
    }
}

/// `x` with `decimals` decimals for table cells when that is meaningful (1e-3 <= |x| < 1e9,
/// or 0), else in scientific notation with as many digits: -3.8e29 never spans 30 columns.
pub fn table(x: f64, decimals: usize) -> String {
    let a = x.abs();
    if x == 0.0 || (1e-3..1e9).contains(&a) || !x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        format!("{x:.decimals$e}")
    }
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn ordinary_values_keep_their_usual_form_and_extremes_stay_short() {
        for (x, s) in [(0.1, "0.1"), (0.0, "0"), (250.0, "250"), (0.005, "0.005"), (-3.5, "-3.5")] {
            assert_eq!(compact(x), s);
        }
        assert_eq!(compact(1e-300), "1e-300");
        assert_eq!(compact(1.7976931348623157e308), "1.797693e308");
        assert_eq!(compact(1.0 / 3.0), "3.333333e-1");
        assert_eq!(compact(f64::INFINITY), "inf");
        assert_eq!(compact(f64::NAN), "NaN");
        for x in [1e-300, 123456789.123456, 5e-324, -1e300, 0.1 + 0.2] {
            assert!(compact(x).len() <= 13, "{x} -> {}", compact(x));
            let e = super::exact_short(x);
            assert!(e.len() <= 24 && e.parse::<f64>() == Ok(x), "{x} -> {e}");
        }
        assert_eq!(super::exact_short(0.1), "0.1");
        assert_eq!(super::table(-192.12345, 3), "-192.123");
        assert_eq!(super::table(-3.8e29, 3), "-3.800e29");
        assert_eq!(super::table(0.0, 3), "0.000");
        assert_eq!(super::exact_short(1e-300), "1e-300");
    }
}
