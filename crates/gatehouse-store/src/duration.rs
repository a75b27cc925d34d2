//! LiteLLM budget durations (`30s`, `10m`, `24h`, `7d`, `2w`, `1mo`, `1y`) and the calendar
//! arithmetic needed to advance a reset time by whole months.

use std::time::Duration;

/// A parsed LiteLLM `budget_duration`.
///
/// Seconds, minutes, hours, days and weeks are fixed lengths. Months and years are calendar
/// periods computed exactly in UTC: one month after 15 March 10:00 is 15 April 10:00; when
/// the day does not exist in the target month it is clamped to that month's last day
/// (31 January + 1 month = 28 or 29 February).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetDuration {
    /// A fixed length of time (`s`, `m`, `h`, `d`, `w`).
    Fixed(Duration),
    /// A number of calendar months (`mo`; `y` is twelve months).
    Months(u32),
}

const MS_PER_DAY: i64 = 86_400_000;

impl BudgetDuration {
    /// The instant (unix ms) one period after `from_ms`, or `None` on overflow.
    pub fn add_to(&self, from_ms: i64) -> Option<i64> {
        match *self {
            BudgetDuration::Fixed(d) => {
                let ms = i64::try_from(d.as_millis()).ok()?;
                from_ms.checked_add(ms)
            }
            BudgetDuration::Months(n) => add_months(from_ms, n),
        }
    }

    /// The first instant `from_ms + k * period` (k ≥ 1) that is strictly after `now_ms`.
    ///
    /// Used when a reset is overdue (e.g. the gateway was down for several periods): the
    /// schedule stays aligned to its original anchor instead of drifting to "now".
    pub fn next_after(&self, from_ms: i64, now_ms: i64) -> Option<i64> {
        let mut next = self.add_to(from_ms)?;
        if next > now_ms {
            return Some(next);
        }
        if let BudgetDuration::Fixed(d) = *self {
            // Jump straight to the right period instead of looping.
            let period = i64::try_from(d.as_millis()).ok()?.max(1);
            let behind = now_ms.checked_sub(next)?;
            let periods = behind / period + 1;
            return next.checked_add(periods.checked_mul(period)?);
        }
        // Months: at most a few hundred iterations even after years of downtime.
        let mut guard = 0u32;
        while next <= now_ms {
            next = self.add_to(next)?;
            guard += 1;
            if guard > 100_000 {
                return None;
            }
        }
        Some(next)
    }
}

/// Parses a LiteLLM duration string: a positive integer followed by a unit, `s` (seconds),
/// `m` (minutes), `h` (hours), `d` (days), `w` (weeks), `mo` (calendar months) or `y`
/// (calendar years, twelve months). Surrounding whitespace is ignored. Returns `None` for
/// anything else, including a zero amount.
///
/// ```
/// use std::time::Duration;
/// use gatehouse_store::{parse_duration, BudgetDuration};
/// assert_eq!(parse_duration("30s"), Some(BudgetDuration::Fixed(Duration::from_secs(30))));
/// assert_eq!(parse_duration("1mo"), Some(BudgetDuration::Months(1)));
/// assert_eq!(parse_duration("0d"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<BudgetDuration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    if n == 0 {
        return None;
    }
    let secs = |mult: u64| {
        n.checked_mul(mult)
            .map(|s| BudgetDuration::Fixed(Duration::from_secs(s)))
    };
    match unit {
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3_600),
        "d" => secs(86_400),
        "w" => secs(7 * 86_400),
        "mo" => u32::try_from(n).ok().map(BudgetDuration::Months),
        "y" => u32::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(12))
            .map(BudgetDuration::Months),
        _ => None,
    }
}

/// Adds `months` calendar months to a unix-ms instant (UTC), clamping the day of month.
fn add_months(ms: i64, months: u32) -> Option<i64> {
    let days = ms.div_euclid(MS_PER_DAY);
    let time_of_day = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let total = i64::from(m) - 1 + i64::from(months);
    let year = y.checked_add(total.div_euclid(12))?;
    let month = u32::try_from(total.rem_euclid(12) + 1).ok()?;
    let day = d.min(days_in_month(year, month));
    days_from_civil(year, month, day)
        .checked_mul(MS_PER_DAY)?
        .checked_add(time_of_day)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31). Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // d is in 1..=31 and m in 1..=12 by construction.
    (y, m as u32, d as u32)
}

/// (year, month 1..=12, day) → days since 1970-01-01. Howard Hinnant's algorithm.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * MS_PER_DAY + h * 3_600_000
    }

    #[test]
    fn parses_litellm_units() {
        let f = |s| Some(BudgetDuration::Fixed(Duration::from_secs(s)));
        assert_eq!(parse_duration("30s"), f(30));
        assert_eq!(parse_duration("10m"), f(600));
        assert_eq!(parse_duration("24h"), f(86_400));
        assert_eq!(parse_duration("7d"), f(7 * 86_400));
        assert_eq!(parse_duration("30d"), f(30 * 86_400));
        assert_eq!(parse_duration("2w"), f(14 * 86_400));
        assert_eq!(parse_duration(" 1mo "), Some(BudgetDuration::Months(1)));
        assert_eq!(parse_duration("1y"), Some(BudgetDuration::Months(12)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "d",
            "0s",
            "-1d",
            "1",
            "1x",
            "1.5h",
            "1 d",
            "1mon",
            "mo",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn months_are_calendar_months() {
        let one = BudgetDuration::Months(1);
        assert_eq!(one.add_to(ms(2025, 3, 15, 10)), Some(ms(2025, 4, 15, 10)));
        assert_eq!(one.add_to(ms(2025, 12, 31, 0)), Some(ms(2026, 1, 31, 0)));
        assert_eq!(one.add_to(ms(2025, 1, 31, 5)), Some(ms(2025, 2, 28, 5)));
        assert_eq!(one.add_to(ms(2024, 1, 31, 5)), Some(ms(2024, 2, 29, 5)));
        assert_eq!(
            BudgetDuration::Months(12).add_to(ms(2024, 2, 29, 0)),
            Some(ms(2025, 2, 28, 0))
        );
    }

    #[test]
    fn next_after_skips_missed_periods() {
        let hour = BudgetDuration::Fixed(Duration::from_secs(3_600));
        let start = ms(2025, 1, 1, 0);
        assert_eq!(hour.next_after(start, start), Some(start + 3_600_000));
        assert_eq!(
            hour.next_after(start, start + 3_600_000),
            Some(start + 7_200_000)
        );
        assert_eq!(
            hour.next_after(start, start + 10 * 3_600_000 + 5),
            Some(start + 11 * 3_600_000)
        );
        let month = BudgetDuration::Months(1);
        assert_eq!(
            month.next_after(start, ms(2025, 3, 10, 0)),
            Some(ms(2025, 4, 1, 0))
        );
    }
}
