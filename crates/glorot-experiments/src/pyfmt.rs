//! Python's `repr` of a float, so replayed numbers can be compared with the notebook's
//! printed text digit for digit.
//!
//! Python (and NumPy's `float64.__str__` since NumPy 1.14) prints the shortest decimal
//! string that parses back to the same double, like Rust, but lays it out differently:
//! fixed notation with at least one digit after the point when the decimal exponent is in
//! `-4..16` (`95.7`, `10.0`, `0.0001`), scientific notation otherwise with a signed,
//! at-least-two-digit exponent (`4.6755164788088444e-05`, `1e+16`). Rust's `{}` never
//! uses an exponent and drops `.0`; its `{:?}` writes `1e-5`. This module converts.

/// `repr(x)` as Python 3 writes it.
pub fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: `d[.ddd]e<exp>`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes an integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            // 0.000ddd
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            // dddd00.0
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_owned()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::py_repr;

    #[track_caller]
    fn check(x: f64, expect: &str) {
        assert_eq!(py_repr(x), expect, "{x:?}");
        assert_eq!(expect.parse::<f64>().unwrap().to_bits(), x.to_bits());
    }

    #[test]
    fn matches_python_repr() {
        // Printed by the notebook (../shared/seed/notebook.txt, lines 247, 264, 835, 853).
        check(1.1164179979846724, "1.1164179979846724");
        check(95.7, "95.7");
        check(4.6755164788088444e-05, "4.6755164788088444e-05");
        check(4.56562079809153e-11, "4.56562079809153e-11");
        check(-0.038125702875859306, "-0.038125702875859306");
        // Python 3: repr of these (hand-checked against CPython's float_repr_style 'short').
        check(90.0, "90.0");
        check(10.0, "10.0");
        check(0.0001, "0.0001");
        check(0.00001, "1e-05");
        check(1e16, "1e+16");
        check(123456789012345.0, "123456789012345.0");
        check(1234567890123456.0, "1234567890123456.0");
        check(0.1, "0.1");
        check(-2.5e-300, "-2.5e-300");
        check(1.5e300, "1.5e+300");
        check(0.0, "0.0");
        check(-0.0, "-0.0");
        assert_eq!(py_repr(f64::NAN), "nan");
        assert_eq!(py_repr(f64::NEG_INFINITY), "-inf");
    }
}
